// Published versions: pick two (or one and the draft) to compare side by side, or bring
// one back into the draft (an undoable edit).

import { useState } from 'react';

import type { VersionSummary } from '../api';
import { Icon } from './Icon';

export interface VersionsPanelProps {
  versions: VersionSummary[];
  loading: boolean;
  readOnly: boolean;
  onCompare(left: number | 'draft', right: number | 'draft'): void;
  onRestore(number: number): void;
  onClose(): void;
}

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function VersionsPanel({ versions, loading, readOnly, onCompare, onRestore, onClose }: VersionsPanelProps) {
  const [picked, setPicked] = useState<(number | 'draft')[]>([]);
  const toggle = (v: number | 'draft') => setPicked((p) => (p.includes(v) ? p.filter((x) => x !== v) : [...p, v].slice(-2)));
  const order = (a: number | 'draft', b: number | 'draft'): [number | 'draft', number | 'draft'] => {
    const rank = (x: number | 'draft') => (x === 'draft' ? Infinity : x);
    return rank(a) <= rank(b) ? [a, b] : [b, a];
  };
  return (
    <div className="inspector-body" data-testid="versions-panel">
      <header className="inspector-head">
        <span className="type-icon" style={{ background: '#475569' }}>
          <Icon name="history" size={14} />
        </span>
        <div className="inspector-title">
          <strong>Versions</strong>
          <span>Tick two to compare them side by side</span>
        </div>
        <button type="button" className="icon-button" onClick={onClose} title="Close">
          <Icon name="x" />
        </button>
      </header>
      <ul className="version-list">
        {!readOnly ? (
          <li className={picked.includes('draft') ? 'picked' : ''}>
            <label>
              <input type="checkbox" checked={picked.includes('draft')} onChange={() => toggle('draft')} data-testid="pick-draft" />
              <span className="version-num draft">Draft</span>
              <span className="version-meta">the canvas as it is now</span>
            </label>
          </li>
        ) : null}
        {loading ? <li className="muted pad">Loading…</li> : null}
        {!loading && versions.length === 0 ? <li className="muted pad">Nothing published yet.</li> : null}
        {versions.map((v) => (
          <li key={v.number} className={picked.includes(v.number) ? 'picked' : ''} data-testid={`version-${v.number}`}>
            <label>
              <input type="checkbox" checked={picked.includes(v.number)} onChange={() => toggle(v.number)} data-testid={`pick-${v.number}`} />
              <span className="version-num">v{v.number}</span>
              <span className="version-meta">
                {when(v.publishedAt)}
                {v.author ? ` · ${v.author}` : ''}
                {v.note ? <em> — {v.note}</em> : null}
              </span>
            </label>
            {!readOnly ? (
              <button type="button" className="link small" onClick={() => onRestore(v.number)} title="Replace the draft with this version (undoable)">
                Restore
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      <div className="pad">
        <button
          type="button"
          className="button"
          disabled={picked.length !== 2}
          onClick={() => {
            const [a, b] = order(picked[0]!, picked[1]!);
            onCompare(a, b);
          }}
          data-testid="compare"
        >
          <Icon name="diff" size={14} /> Compare {picked.length === 2 ? picked.map((p) => (p === 'draft' ? 'draft' : `v${p}`)).join(' ↔ ') : ''}
        </button>
      </div>
    </div>
  );
}
