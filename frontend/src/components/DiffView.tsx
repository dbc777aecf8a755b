// Two versions side by side, each on its own read-only canvas, with added / removed /
// changed sequences, events and edges highlighted.

import { ReactFlowProvider } from '@xyflow/react';
import { useMemo } from 'react';

import { diffSpecs } from '../lib/diff';
import type { WorkflowSpec } from '../lib/spec';
import { EditorContext } from '../store/context';
import { createEditorStore } from '../store/editor';
import { Canvas } from './Canvas';
import { Icon } from './Icon';

export interface DiffSide {
  label: string;
  spec: WorkflowSpec;
}

function Side({ side, spec, diff, label }: { side: 'left' | 'right'; spec: WorkflowSpec; diff: ReturnType<typeof diffSpecs>; label: string }) {
  const store = useMemo(() => createEditorStore({ spec, readOnly: true, diff: { spec: diff, side } }), [spec, diff, side]);
  return (
    <div className="diff-side" data-testid={`diff-${side}`}>
      <div className="diff-side-label">{label}</div>
      <EditorContext.Provider value={store}>
        <ReactFlowProvider>
          <Canvas minimap={false} testId={`diff-canvas-${side}`} />
        </ReactFlowProvider>
      </EditorContext.Provider>
    </div>
  );
}

export function DiffView({ left, right, onClose }: { left: DiffSide; right: DiffSide; onClose(): void }) {
  const diff = useMemo(() => diffSpecs(left.spec, right.spec), [left.spec, right.spec]);
  const { added, removed, changed } = diff.summary;
  return (
    <div className="diff-overlay" role="dialog" aria-label="Compare versions" data-testid="diff-view">
      <header className="diff-head">
        <div>
          <strong>
            {left.label} → {right.label}
          </strong>
          <span className="diff-summary" data-testid="diff-summary">
            <span className="legend added">{added} added</span>
            <span className="legend removed">{removed} removed</span>
            <span className="legend changed">{changed} changed</span>
            {diff.sections.length ? <span className="legend changed">workflow: {diff.sections.join(', ')}</span> : null}
          </span>
        </div>
        <button type="button" className="icon-button" onClick={onClose} title="Close (Esc)" data-testid="diff-close">
          <Icon name="x" />
        </button>
      </header>
      <div className="diff-body">
        <Side side="left" spec={left.spec} diff={diff} label={left.label} />
        <Side side="right" spec={right.spec} diff={diff} label={right.label} />
      </div>
    </div>
  );
}
