// spec ↔ React Flow nodes/edges. Pure (type-only imports from @xyflow/react) so it is
// tested without a DOM. Node objects are reused when nothing they show changed, so memoized
// node components skip rendering on unrelated edits.

import type { Edge, Node } from '@xyflow/react';

import { computeLevels, type Levels } from './levels';
import { CARD_WIDTH, cardHeight, nodePositions } from './layout';
import type { SequenceIssues } from './paths';
import { stepTag, type Direction, type Point, type SequenceSpec, type WorkflowSpec } from './spec';

export type Change = 'added' | 'removed' | 'changed' | 'moved' | 'same';

export type SequenceNodeData = {
  seq: SequenceSpec;
  index: number;
  level: number;
  direction: Direction;
  readOnly: boolean;
  issues: SequenceIssues | undefined;
  /** Index of the selected event in this sequence, or -1. */
  selectedEvent: number;
  /** Diff view: the sequence's change and its events' changes (by index). */
  diff: { change: Change; events: Change[] } | undefined;
  /** Run monitor: status of each event, by index (pending, running, completed, failed…). */
  stepStatus: string[] | undefined;
};

export type SequenceNode = Node<SequenceNodeData, 'sequence'>;
export type ParentEdge = Edge<{ readOnly: boolean; change?: Change }, 'parent'>;

export function edgeId(parent: string, child: string): string {
  return `${parent}->${child}`;
}

export interface GraphOptions {
  levels?: Levels;
  readOnly?: boolean;
  selected?: ReadonlySet<string>;
  selectedEdges?: ReadonlySet<string>;
  selectedEvent?: { seq: string; index: number } | null;
  issues?: Map<string, SequenceIssues>;
  diff?: Map<string, { change: Change; events: Change[] }>;
  edgeChanges?: Map<string, Change>;
  stepStatus?: Record<string, string>;
  /** The previous result, whose unchanged objects are reused. */
  prev?: { nodes: readonly SequenceNode[]; edges: readonly ParentEdge[] };
}

function sameData(a: SequenceNodeData, b: SequenceNodeData): boolean {
  return (
    a.seq === b.seq &&
    a.index === b.index &&
    a.level === b.level &&
    a.direction === b.direction &&
    a.readOnly === b.readOnly &&
    a.selectedEvent === b.selectedEvent &&
    (a.issues?.key ?? '') === (b.issues?.key ?? '') &&
    a.diff === b.diff &&
    (a.stepStatus?.join() ?? '') === (b.stepStatus?.join() ?? '')
  );
}

export function specToNodes(spec: WorkflowSpec, options: GraphOptions = {}): SequenceNode[] {
  const levels = options.levels ?? computeLevels(spec.sequences);
  const positions = nodePositions(spec, levels);
  const prev = new Map((options.prev?.nodes ?? []).map((n) => [n.id, n]));
  const seen = new Set<string>();
  const nodes: SequenceNode[] = [];
  spec.sequences.forEach((seq, index) => {
    // Duplicate tags are a spec error; keep every card visible with a distinct id.
    const id = seen.has(seq.tag) ? `${seq.tag}#${index}` : seq.tag;
    seen.add(seq.tag);
    const position = positions.get(seq.tag) ?? { x: 0, y: 0 };
    const data: SequenceNodeData = {
      seq,
      index,
      level: levels.level.get(seq.tag) ?? 0,
      direction: spec.layout.direction,
      readOnly: options.readOnly ?? false,
      issues: options.issues?.get(seq.tag),
      selectedEvent: options.selectedEvent?.seq === seq.tag ? options.selectedEvent.index : -1,
      diff: options.diff?.get(seq.tag),
      stepStatus: options.stepStatus ? seq.events.map((e) => options.stepStatus![stepTag(e)] ?? 'pending') : undefined,
    };
    const selected = options.selected?.has(id) ?? false;
    const height = cardHeight(seq);
    const old = prev.get(id);
    if (
      old &&
      old.position.x === position.x &&
      old.position.y === position.y &&
      (old.selected ?? false) === selected &&
      old.height === height &&
      sameData(old.data, data)
    ) {
      nodes.push(old);
      return;
    }
    nodes.push({
      id,
      type: 'sequence',
      position,
      data: old && sameData(old.data, data) ? old.data : data,
      selected,
      width: CARD_WIDTH,
      height,
      draggable: !(options.readOnly ?? false),
      connectable: !(options.readOnly ?? false),
    });
  });
  return nodes;
}

export function specToEdges(spec: WorkflowSpec, options: GraphOptions = {}): ParentEdge[] {
  const tags = new Set(spec.sequences.map((s) => s.tag));
  const prev = new Map((options.prev?.edges ?? []).map((e) => [e.id, e]));
  const edges: ParentEdge[] = [];
  const seen = new Set<string>();
  for (const seq of spec.sequences) {
    for (const parent of seq.parents) {
      if (!tags.has(parent)) continue;
      const id = edgeId(parent, seq.tag);
      if (seen.has(id)) continue;
      seen.add(id);
      const selected = options.selectedEdges?.has(id) ?? false;
      const change = options.edgeChanges?.get(id);
      const readOnly = options.readOnly ?? false;
      const old = prev.get(id);
      if (old && (old.selected ?? false) === selected && old.data?.change === change && old.data?.readOnly === readOnly) {
        edges.push(old);
        continue;
      }
      edges.push({
        id,
        source: parent,
        target: seq.tag,
        type: 'parent',
        selected,
        data: { readOnly, change },
        className: change && change !== 'same' ? `diff-${change}` : undefined,
      });
    }
  }
  return edges;
}

/**
 * The reverse direction: a spec whose parents follow `edges` and whose manual positions
 * are the nodes' positions. Parents keep their existing order; new ones are appended.
 */
export function graphToSpec(
  spec: WorkflowSpec,
  nodes: readonly { id: string; position: Point }[],
  edges: readonly { source: string; target: string }[],
): WorkflowSpec {
  const incoming = new Map<string, string[]>();
  for (const e of edges) {
    const list = incoming.get(e.target) ?? [];
    if (!list.includes(e.source)) list.push(e.source);
    incoming.set(e.target, list);
  }
  const tags = new Set(spec.sequences.map((s) => s.tag));
  const sequences = spec.sequences.map((seq) => {
    const wanted = incoming.get(seq.tag) ?? [];
    // Dangling parents (unknown tags) are not edges; keep them so the error stays visible.
    const kept = seq.parents.filter((p) => !tags.has(p) || wanted.includes(p));
    const parents = [...kept, ...wanted.filter((p) => !kept.includes(p))];
    const same = parents.length === seq.parents.length && parents.every((p, i) => p === seq.parents[i]);
    return same ? seq : { ...seq, parents };
  });
  const positions: Record<string, Point> = {};
  for (const n of nodes) if (tags.has(n.id)) positions[n.id] = { x: n.position.x, y: n.position.y };
  return { ...spec, sequences, layout: { ...spec.layout, positions } };
}

/** Tags of every ancestor of `tag` (transitive parents). */
export function ancestors(spec: WorkflowSpec, tag: string): Set<string> {
  const byTag = new Map(spec.sequences.map((s) => [s.tag, s]));
  const out = new Set<string>();
  const stack = [...(byTag.get(tag)?.parents ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    if (out.has(p) || !byTag.has(p)) continue;
    out.add(p);
    stack.push(...byTag.get(p)!.parents);
  }
  return out;
}

/** Whether `parent → child` may be added: no self edge, no duplicate, no cycle. */
export function canConnect(spec: WorkflowSpec, parent: string, child: string): boolean {
  if (parent === child) return false;
  const seq = spec.sequences.find((s) => s.tag === child);
  if (!seq || !spec.sequences.some((s) => s.tag === parent)) return false;
  if (seq.parents.includes(parent)) return false;
  return !ancestors(spec, parent).has(child);
}
