// What changed between two specs, in the canvas' terms: sequences, events (matched by step
// tag), parent edges and workflow-level sections. Layout (positions) is not a change.

import type { Change } from './graph';
import { edgeId } from './graph';
import type { EventSpec, SequenceSpec, WorkflowSpec } from './spec';
import { stepTag } from './spec';

export interface SequenceDiff {
  change: Change;
  /** Changes of the left (older) side's events, by index. */
  left: Change[];
  /** Changes of the right (newer) side's events, by index. */
  right: Change[];
}

export interface SpecDiff {
  sequences: Map<string, SequenceDiff>;
  edges: Map<string, Change>;
  /** Workflow-level sections that differ: options, signals, queries, input, output… */
  sections: string[];
  summary: { added: number; removed: number; changed: number };
}

/** JSON with sorted keys, so key order never counts as a change. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

const EVENT_DEFAULTS: Record<string, unknown> = {
  retries: 0,
  retry_delay: 0,
  backoff: 'fixed',
  timeout: null,
  allow_fail: false,
  critical: false,
  condition: null,
  rollback: null,
  description: '',
  app: null,
};

/** An event without fields equal to their defaults (explicit default = omitted). */
export function normalizeEvent(event: EventSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) continue;
    if (key in EVENT_DEFAULTS && canonical(EVENT_DEFAULTS[key]) === canonical(value)) continue;
    if (key === 'condition' && value === '') continue;
    if (key === 'tag' && (value === event.event || value === null || value === '')) continue;
    out[key] = value;
  }
  return out;
}

function sequenceShell(seq: SequenceSpec): string {
  return canonical({
    parents: [...seq.parents].sort(),
    skip_if: seq.skip_if || null,
    description: seq.description || '',
    level: seq.level ?? null,
  });
}

function diffEvents(left: readonly EventSpec[], right: readonly EventSpec[]): { left: Change[]; right: Change[] } {
  const leftTags = left.map(stepTag);
  const rightTags = right.map(stepTag);
  const rightByTag = new Map(right.map((e, i) => [stepTag(e), i]));
  const leftByTag = new Map(left.map((e, i) => [stepTag(e), i]));
  const commonLeft = leftTags.filter((t) => rightByTag.has(t));
  const commonRight = rightTags.filter((t) => leftByTag.has(t));
  const orderLeft = new Map(commonLeft.map((t, i) => [t, i]));
  const orderRight = new Map(commonRight.map((t, i) => [t, i]));
  const status = (tag: string, mine: EventSpec, other: EventSpec | undefined): Change => {
    if (!other) return 'same';
    if (canonical(normalizeEvent(mine)) !== canonical(normalizeEvent(other))) return 'changed';
    return orderLeft.get(tag) === orderRight.get(tag) ? 'same' : 'moved';
  };
  return {
    left: left.map((e, i) => {
      const tag = leftTags[i]!;
      const j = rightByTag.get(tag);
      return j === undefined ? 'removed' : status(tag, e, right[j]);
    }),
    right: right.map((e, i) => {
      const tag = rightTags[i]!;
      const j = leftByTag.get(tag);
      return j === undefined ? 'added' : status(tag, e, left[j]);
    }),
  };
}

const SECTIONS = ['options', 'signals', 'queries', 'input', 'output', 'triggers', 'envs', 'recording'] as const;

export function diffSpecs(left: WorkflowSpec, right: WorkflowSpec): SpecDiff {
  const sequences = new Map<string, SequenceDiff>();
  const leftSeqs = new Map(left.sequences.map((s) => [s.tag, s]));
  const rightSeqs = new Map(right.sequences.map((s) => [s.tag, s]));
  const summary = { added: 0, removed: 0, changed: 0 };
  for (const [tag, l] of leftSeqs) {
    const r = rightSeqs.get(tag);
    if (!r) {
      sequences.set(tag, { change: 'removed', left: l.events.map(() => 'removed'), right: [] });
      summary.removed += 1;
      continue;
    }
    const events = diffEvents(l.events, r.events);
    const eventsChanged = [...events.left, ...events.right].some((c) => c !== 'same');
    const change: Change = eventsChanged || sequenceShell(l) !== sequenceShell(r) ? 'changed' : 'same';
    if (change === 'changed') summary.changed += 1;
    sequences.set(tag, { change, ...events });
  }
  for (const [tag, r] of rightSeqs) {
    if (leftSeqs.has(tag)) continue;
    sequences.set(tag, { change: 'added', left: [], right: r.events.map(() => 'added') });
    summary.added += 1;
  }
  const edgeSet = (spec: WorkflowSpec): Set<string> => {
    const tags = new Set(spec.sequences.map((s) => s.tag));
    const out = new Set<string>();
    for (const s of spec.sequences) for (const p of s.parents) if (tags.has(p)) out.add(edgeId(p, s.tag));
    return out;
  };
  const le = edgeSet(left);
  const re = edgeSet(right);
  const edges = new Map<string, Change>();
  for (const id of le) edges.set(id, re.has(id) ? 'same' : 'removed');
  for (const id of re) if (!le.has(id)) edges.set(id, 'added');
  const sections = SECTIONS.filter((key) => canonical(left[key] ?? null) !== canonical(right[key] ?? null));
  return { sequences, edges, sections, summary };
}

/** The marks one side of a side-by-side diff draws on its nodes. */
export function diffMarks(diff: SpecDiff, side: 'left' | 'right'): Map<string, { change: Change; events: Change[] }> {
  const out = new Map<string, { change: Change; events: Change[] }>();
  for (const [tag, d] of diff.sequences) {
    if (side === 'left' && d.change === 'added') continue;
    if (side === 'right' && d.change === 'removed') continue;
    out.set(tag, { change: d.change, events: side === 'left' ? d.left : d.right });
  }
  return out;
}

export function edgeMarks(diff: SpecDiff, side: 'left' | 'right'): Map<string, Change> {
  const out = new Map<string, Change>();
  for (const [id, change] of diff.edges) {
    if (side === 'left' && change === 'added') continue;
    if (side === 'right' && change === 'removed') continue;
    out.set(id, change);
  }
  return out;
}
