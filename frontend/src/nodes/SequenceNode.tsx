// A sequence card: its tag and level, then its events in order with type icons. Events are
// drop targets (append/insert from the palette, reorder by dragging rows). Memoized: it
// renders again only when its own data changes.

import { Handle, Position, useStore as useFlowStore, type NodeProps } from '@xyflow/react';
import { memo, useCallback, useState, type CSSProperties, type DragEvent, type MouseEvent } from 'react';

import { TYPE_COLORS, TypeIcon } from '../components/Icon';
import type { SequenceNode as SequenceNodeType } from '../lib/graph';
import { FAR_ZOOM } from '../lib/layout';
import { stepTag, type EventSpec } from '../lib/spec';
import { useEditorStore } from '../store/context';
import { MOVE_EVENT, hasTrellisDrag, readMove, readNewEvent } from './dnd';

function subtitle(event: EventSpec): string {
  const parts = [event.app, event.event].filter(Boolean);
  return parts.join(' · ');
}

// Text is cut here rather than by CSS ellipsis: `overflow: hidden` gives every row a clip
// the compositor must handle on each frame, which a 2,500-row canvas feels when panning.
function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

function badgeCount(event: EventSpec): number {
  return [event.condition, event.retries, event.allow_fail, event.critical, event.rollback].filter(Boolean).length;
}

function Badges({ event }: { event: EventSpec }) {
  return (
    <span className="event-badges">
      {event.condition ? <span className="mini-badge" title={`if ${event.condition}`}>if</span> : null}
      {event.retries ? <span className="mini-badge" title={`${event.retries} retries`}>↻{event.retries}</span> : null}
      {event.allow_fail ? <span className="mini-badge soft" title="allow_fail: the run goes on if it fails">may fail</span> : null}
      {event.critical ? <span className="mini-badge strong" title="critical (rolled back first)">critical</span> : null}
      {event.rollback ? <span className="mini-badge" title={`rollback: ${event.rollback.event}`}>⟲</span> : null}
    </span>
  );
}

function SequenceCard({ id, data, selected }: NodeProps<SequenceNodeType>) {
  const store = useEditorStore();
  const { seq, level, direction, readOnly, issues, selectedEvent, diff, stepStatus } = data;
  const [dropIndex, setDropIndex] = useState<number | null>(null);
  const horizontal = direction === 'LR';
  // Re-renders only when the zoom crosses the threshold, not on every frame.
  const far = useFlowStore((s) => s.transform[2] < FAR_ZOOM);

  const indexAt = useCallback(
    (e: DragEvent<HTMLDivElement>): number => {
      const rows = e.currentTarget.querySelector('.event-rows');
      if (!rows || seq.events.length === 0) return 0;
      const rect = rows.getBoundingClientRect();
      const rowHeight = rect.height / seq.events.length;
      const i = Math.round((e.clientY - rect.top) / rowHeight);
      return Math.max(0, Math.min(seq.events.length, i));
    },
    [seq.events.length],
  );

  const onDragOver = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      if (readOnly || !hasTrellisDrag(e.dataTransfer)) return;
      e.preventDefault();
      e.stopPropagation();
      e.dataTransfer.dropEffect = hasTrellisDrag(e.dataTransfer) === 'move' ? 'move' : 'copy';
      const i = indexAt(e);
      setDropIndex((old) => (old === i ? old : i));
    },
    [readOnly, indexAt],
  );

  const onDragLeave = useCallback((e: DragEvent<HTMLDivElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as globalThis.Node | null)) setDropIndex(null);
  }, []);

  const onDrop = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      if (readOnly) return;
      const kind = hasTrellisDrag(e.dataTransfer);
      if (!kind) return;
      e.preventDefault();
      e.stopPropagation();
      const index = indexAt(e);
      setDropIndex(null);
      const s = store.getState();
      if (kind === 'move') {
        const from = readMove(e.dataTransfer);
        if (from) s.moveEvent(from, seq.tag, index);
      } else {
        const event = readNewEvent(e.dataTransfer);
        if (event) s.insertEvent(seq.tag, event, index);
      }
    },
    [readOnly, indexAt, store, seq.tag],
  );

  const onRowClick = useCallback(
    (e: MouseEvent<HTMLDivElement>) => {
      const index = Number(e.currentTarget.dataset.index);
      e.stopPropagation();
      store.getState().selectEvent({ seq: seq.tag, index });
    },
    [store, seq.tag],
  );

  const onRowDragStart = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      const index = Number(e.currentTarget.dataset.index);
      e.dataTransfer.setData(MOVE_EVENT, JSON.stringify({ seq: seq.tag, index }));
      e.dataTransfer.effectAllowed = 'move';
      e.stopPropagation();
    },
    [seq.tag],
  );

  const classes = ['seq-card'];
  if (selected) classes.push('selected');
  if (issues?.count) classes.push('has-issues');
  if (diff) classes.push(`diff-${diff.change}`);
  if (dropIndex !== null) classes.push('drop-target');

  const attributes = {
    'data-testid': `seq-${seq.tag}`,
    'data-tag': seq.tag,
    'data-level': level,
    'data-parents': seq.parents.join(','),
  };

  if (far) {
    // Far out: the card is its tag and a colour bar per event (a tenth of the elements).
    classes.push('far');
    return (
      <div className={classes.join(' ')} {...attributes}>
        <Handle type="target" position={horizontal ? Position.Left : Position.Top} className="seq-handle" isConnectable={!readOnly} />
        <div className="seq-header">
          <span className="seq-tag">{cut(seq.tag, 16)}</span>
          {issues?.count ? <span className="issue-badge">{issues.count}</span> : null}
        </div>
        <div className="event-rows">
          {seq.events.map((event, index) => (
            <div
              key={index}
              className={`event-row far${issues?.events.has(index) ? ' has-issues' : ''}${diff?.events[index] && diff.events[index] !== 'same' ? ` diff-${diff.events[index]}` : ''}${stepStatus?.[index] ? ` status-${stepStatus[index]}` : ''}`}
              style={{ '--type-color': TYPE_COLORS[event.type] } as CSSProperties}
            />
          ))}
        </div>
        <Handle type="source" position={horizontal ? Position.Right : Position.Bottom} className="seq-handle" isConnectable={!readOnly} />
      </div>
    );
  }

  return (
    <div
      className={classes.join(' ')}
      {...attributes}
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      <Handle type="target" position={horizontal ? Position.Left : Position.Top} className="seq-handle" isConnectable={!readOnly} />
      <div className="seq-header">
        <span className="seq-level" title={`Level ${level}`}>L{level}</span>
        <span className="seq-tag" title={seq.description || seq.tag}>
          {cut(seq.tag, seq.skip_if ? 18 : 26)}
        </span>
        {seq.skip_if ? <span className="mini-badge" title={`skip if ${seq.skip_if}`}>skip if</span> : null}
        {diff && diff.change !== 'same' ? <span className={`diff-chip diff-chip-${diff.change}`}>{diff.change}</span> : null}
        {issues?.count ? (
          <span className="issue-badge" data-testid={`issues-${seq.tag}`} title={[...issues.own, ...[...issues.events.values()].flat()].map((i) => i.message).join('\n')}>
            {issues.count}
          </span>
        ) : (
          <span className="seq-count">{seq.events.length}</span>
        )}
      </div>
      {issues?.own.length ? <div className="seq-issue-line">{issues.own[0]!.message}</div> : null}
      <div className="event-rows">
        {seq.events.length === 0 ? (
          <div className="event-empty">{readOnly ? 'No events' : 'Drop events here'}</div>
        ) : (
          seq.events.map((event, index) => {
            const tag = stepTag(event);
            const rowIssues = issues?.events.get(index);
            const rowClasses = ['event-row', 'nodrag'];
            if (index === selectedEvent) rowClasses.push('selected');
            if (rowIssues) rowClasses.push('has-issues');
            const change = diff?.events[index];
            if (change && change !== 'same') rowClasses.push(`diff-${change}`);
            const status = stepStatus?.[index];
            if (status) rowClasses.push(`status-${status}`);
            return (
              <div
                key={`${index}:${tag}`}
                className={rowClasses.join(' ')}
                data-index={index}
                data-testid={`event-${tag}`}
                draggable={!readOnly}
                onDragStart={onRowDragStart}
                onClick={onRowClick}
                title={rowIssues ? rowIssues.map((i) => i.message).join('\n') : event.description || subtitle(event)}
              >
                <TypeIcon type={event.type} />
                <span className="event-text">
                  <span className="event-tag">{cut(tag, 24)}</span>
                  <span className="event-sub">{cut(subtitle(event), Math.max(0, 34 - Math.min(tag.length, 24) - badgeCount(event) * 5 - (rowIssues ? 2 : 0)))}</span>
                </span>
                <Badges event={event} />
                {status ? <span className={`status-dot status-${status}`} title={status} /> : null}
                {rowIssues ? <span className="row-issue" aria-label="has errors">!</span> : null}
              </div>
            );
          })
        )}
        {dropIndex !== null ? <div className="drop-indicator" style={{ top: dropIndex * 30 - 1 }} /> : null}
      </div>
      <Handle type="source" position={horizontal ? Position.Right : Position.Bottom} className="seq-handle" isConnectable={!readOnly} />
      <span className="sr-only">{id}</span>
    </div>
  );
}

export const SequenceNodeView = memo(SequenceCard);
