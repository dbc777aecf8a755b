// The run drawn on its workflow's canvas: one card per sequence, one row per step with its
// live state, duration and attempts. Its own node type (read-only, no editing handlers).

import {
  Background,
  BackgroundVariant,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  type Edge,
  type Node,
  type NodeProps,
  type NodeTypes,
} from '@xyflow/react';
import { memo, useMemo } from 'react';

import { CARD_WIDTH, cardHeight, nodePositions } from '../lib/layout';
import { computeLevels } from '../lib/levels';
import { bodyTags, iterationStates, iterationSummary, type IterationState } from '../lib/loops';
import { stepTag, type SequenceSpec, type WorkflowSpec } from '../lib/spec';
import { durationMs, formatDuration, rowLabel, skipNote, type RunView, type StepView } from './model';

type CardData = {
  seq: SequenceSpec;
  status: string;
  steps: (StepView | undefined)[];
  /** For each FOREACH row (by index): the state of each of its iterations. */
  iterations: (IterationState[] | undefined)[];
  horizontal: boolean;
  selected: string | null;
  now: number;
  onSelect(tag: string): void;
};

type CardNode = Node<CardData, 'monitorSequence'>;

function Card({ data }: NodeProps<CardNode>) {
  const { seq, status, steps, iterations, horizontal, selected, now, onSelect } = data;
  const note = skipNote(seq, status);
  return (
    <div className={`seq-card mon-card seq-${status || 'pending'}`} data-testid={`mon-seq-${seq.tag}`} data-status={status || 'pending'}>
      <Handle type="target" position={horizontal ? Position.Left : Position.Top} className="seq-handle" isConnectable={false} />
      <div className="seq-header">
        <span className="seq-tag">{seq.tag}</span>
        <span className={`mon-seq-status status-${status || 'pending'}`}>{status || 'pending'}</span>
      </div>
      {note ? (
        <div className="mon-skip-note" data-testid={`mon-skip-${seq.tag}`} title={note}>
          {note}
        </div>
      ) : null}
      <div className="event-rows">
        {seq.events.map((event, i) => {
          const tag = stepTag(event);
          const step = steps[i];
          const st = step?.status ?? 'pending';
          const ms = step ? durationMs(step.startedAt, step.finishedAt, now) : null;
          const loop = iterations[i];
          const label = rowLabel(step, status);
          return (
            <div
              key={`${i}:${tag}`}
              className={`event-row nodrag mon-step status-${st}${selected === tag ? ' selected' : ''}`}
              data-testid={`mon-step-${tag}`}
              data-status={st}
              data-attempt={step?.attempt ?? 0}
              onClick={(e) => {
                e.stopPropagation();
                onSelect(tag);
              }}
              title={`${tag}: ${label}`}
            >
              <span className={`status-dot status-${st}`} />
              <span className="event-text">
                <span className="event-tag">{tag}</span>
                <span className="event-sub">{loop ? iterationSummary(loop) : label}</span>
              </span>
              {loop ? <IterationStrip tag={tag} states={loop} /> : null}
              <span className="mon-step-meta">
                {ms !== null && st !== 'pending' && st !== 'skipped' ? <span>{formatDuration(ms)}</span> : null}
                {step && step.attempt > 1 ? <span className="mini-badge">×{step.attempt}</span> : null}
              </span>
            </div>
          );
        })}
      </div>
      <Handle type="source" position={horizontal ? Position.Right : Position.Bottom} className="seq-handle" isConnectable={false} />
    </div>
  );
}

// Past this many iterations the strip shows the first ones and a count of the rest.
const STRIP_MAX = 60;

/** One small cell per iteration of a loop, coloured by its state (hover: index and state). */
function IterationStrip({ tag, states }: { tag: string; states: IterationState[] }) {
  const shown = states.slice(0, STRIP_MAX);
  return (
    <span className="iteration-strip" data-testid={`mon-iterations-${tag}`} data-count={states.length}>
      {shown.map((s, i) => (
        <span key={i} className={`iteration status-${s}`} data-status={s} title={`${tag}[${i}]: ${s}`} />
      ))}
      {states.length > STRIP_MAX ? <span className="iteration-more">+{states.length - STRIP_MAX}</span> : null}
    </span>
  );
}

const nodeTypes = { monitorSequence: memo(Card) } satisfies NodeTypes;

export interface MonitorCanvasProps {
  spec: WorkflowSpec;
  view: RunView;
  selected: string | null;
  now: number;
  onSelect(tag: string): void;
}

function CanvasInner({ spec, view, selected, now, onSelect }: MonitorCanvasProps) {
  const positions = useMemo(() => nodePositions(spec, computeLevels(spec.sequences)), [spec]);
  const nodes: CardNode[] = useMemo(
    () =>
      spec.sequences.map((seq) => ({
        id: seq.tag,
        type: 'monitorSequence' as const,
        position: positions.get(seq.tag) ?? { x: 0, y: 0 },
        width: CARD_WIDTH,
        height: cardHeight(seq),
        draggable: false,
        connectable: false,
        data: {
          seq,
          status: view.sequences[seq.tag] ?? '',
          steps: seq.events.map((e) => view.steps[stepTag(e)]),
          iterations: seq.events.map((e) =>
            e.type === 'FOREACH' ? iterationStates(stepTag(e), bodyTags(e), view.steps, view.sequences, view.steps[stepTag(e)]?.iterations) : undefined,
          ),
          horizontal: spec.layout.direction === 'LR',
          selected,
          now,
          onSelect,
        },
      })),
    [spec, positions, view, selected, now, onSelect],
  );
  const edges: Edge[] = useMemo(
    () =>
      spec.sequences.flatMap((seq) =>
        (seq.parents ?? []).map((parent) => ({
          id: `${parent}->${seq.tag}`,
          source: parent,
          target: seq.tag,
          markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
          animated: view.sequences[seq.tag] === 'started',
        })),
      ),
    [spec, view.sequences],
  );
  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      fitView
      fitViewOptions={{ padding: 0.15, maxZoom: 1.1 }}
      nodesDraggable={false}
      nodesConnectable={false}
      elementsSelectable
      nodesFocusable={false}
      edgesFocusable={false}
      proOptions={{ hideAttribution: true }}
      minZoom={0.1}
    >
      <Background variant={BackgroundVariant.Dots} gap={18} size={1} />
      <Controls showInteractive={false} />
    </ReactFlow>
  );
}

export function MonitorCanvas(props: MonitorCanvasProps) {
  return (
    <div className="mon-canvas" data-testid="mon-canvas">
      <ReactFlowProvider>
        <CanvasInner {...props} />
      </ReactFlowProvider>
    </div>
  );
}
