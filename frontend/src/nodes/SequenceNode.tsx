// A sequence card: its tag and level, then its events in order with type icons. Events are
// drop targets (append/insert from the palette, reorder by dragging rows). Memoized: it
// renders again only when its own data changes.

import { Handle, Position, useStore as useFlowStore, type NodeProps } from '@xyflow/react';
import { memo, useCallback, useState, type CSSProperties, type DragEvent, type MouseEvent } from 'react';

import { TYPE_COLORS, TypeIcon } from '../components/Icon';
import type { SequenceNode as SequenceNodeType } from '../lib/graph';
import { cut, eventBadges, eventSubtitle, headerText, rowText } from '../lib/cardText';
import { FAR_ZOOM } from '../lib/layout';
import { stepTag } from '../lib/spec';
import { useEditorStore } from '../store/context';
import { MOVE_EVENT, hasTrellisDrag, readMove, readNewEvent } from './dnd';

function Badges({ badges }: { badges: ReturnType<typeof eventBadges> }) {
  if (!badges.length) return null;
  return (
    <span className="event-badges">
      {badges.map((b) => (
        <span key={b.label} className={`mini-badge${b.tone ? ` ${b.tone}` : ''}`} title={b.title}>
          {b.label}
        </span>
      ))}
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
          {headerText(seq.tag, (seq.skip_if ? 7 : 0) + (diff && diff.change !== 'same' ? diff.change.length : 0), (seq.skip_if ? 1 : 0) + (diff && diff.change !== 'same' ? 1 : 0))}
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
            const badges = eventBadges(event);
            const status = stepStatus?.[index];
            const [shownTag, shownSub] = rowText(tag, eventSubtitle(event), badges.map((b) => b.label), (rowIssues ? 22 : 0) + (status ? 15 : 0));
            const rowClasses = ['event-row', 'nodrag'];
            if (index === selectedEvent) rowClasses.push('selected');
            if (rowIssues) rowClasses.push('has-issues');
            const change = diff?.events[index];
            if (change && change !== 'same') rowClasses.push(`diff-${change}`);
            if (status) rowClasses.push(`status-${status}`);
            return (
              <div
                key={`${index}:${tag}`}
                className={rowClasses.join(' ')}
                data-index={index}
                data-step={tag}
                data-testid={`event-${tag}`}
                draggable={!readOnly}
                onDragStart={onRowDragStart}
                onClick={onRowClick}
                title={rowIssues ? rowIssues.map((i) => i.message).join('\n') : event.description || eventSubtitle(event)}
              >
                <TypeIcon type={event.type} />
                <span className="event-text">
                  <span className="event-tag">{shownTag}</span>
                  <span className="event-sub">{shownSub}</span>
                </span>
                <Badges badges={badges} />
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
