// The list of validation problems; a click selects what the path points at and brings it
// into view.
import { useReactFlow } from '@xyflow/react';
import { useState } from 'react';

import { issueTarget } from '../lib/paths';
import { useEditor, useEditorStore } from '../store/context';
import { Icon } from './Icon';

// A list of thousands would cost more to draw than it helps to read.
const SHOWN = 100;

export function IssuesPanel() {
  const store = useEditorStore();
  const issues = useEditor((s) => s.issues);
  const validation = useEditor((s) => s.validation);
  const flow = useReactFlow();
  const [open, setOpen] = useState(true);
  if (!issues.length || (validation === 'pending' && issues.length === 0)) return null;
  const go = (index: number) => {
    const s = store.getState();
    const issue = issues[index];
    if (!issue) return;
    const t = issueTarget(s.spec, issue);
    if (t.kind === 'event') s.selectEvent({ seq: t.seqTag, index: t.eventIndex });
    else if (t.kind === 'sequence') s.selectSequences([t.seqTag]);
    else {
      s.clearSelection();
      return;
    }
    // Centre on it from the store's nodes (a windowed canvas may not hold it right now).
    const node = s.nodes.find((n) => n.id === t.seqTag);
    if (node) {
      const zoom = Math.max(flow.getZoom(), 0.8);
      void flow.setCenter(node.position.x + (node.width ?? 0) / 2, node.position.y + (node.height ?? 0) / 2, { zoom, duration: 300 });
    }
  };
  return (
    <div className={`issues-panel${open ? ' open' : ''}`} data-testid="issues-panel">
      <button type="button" className="issues-toggle" onClick={() => setOpen(!open)}>
        <Icon name="alert" size={14} /> {issues.length} problem{issues.length === 1 ? '' : 's'}
        <span className="chev">
          <Icon name="chevron" size={12} />
        </span>
      </button>
      {open ? (
        <ul>
          {issues.slice(0, SHOWN).map((issue, i) => (
            <li key={i}>
              <button type="button" onClick={() => go(i)} data-testid="issue-item">
                <code>{issue.path || 'workflow'}</code>
                <span>{issue.message}</span>
              </button>
            </li>
          ))}
          {issues.length > SHOWN ? <li className="muted more">… and {issues.length - SHOWN} more (fix these first)</li> : null}
        </ul>
      ) : null}
    </div>
  );
}
