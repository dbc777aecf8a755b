// The workflow spec as the canvas sees it: a mirror of runtime/spec.py (WorkflowSpec →
// sequences → events). The server is the judge of validity; this module only checks the
// shape the canvas needs and fills defaults so the rest of the code can rely on them.

import { isRecord } from './json';

export const EVENT_TYPES = [
  'ACTION',
  'DB_ACTION',
  'NOTIFICATION',
  'STORAGE',
  'PUBLISH',
  'QUOTA',
  'FALLBACK',
  'FEATURE',
  'JOB',
  'SLEEP',
  'WAIT_SIGNAL',
  'CHECKPOINT',
  'SET_STATE',
  'ROLLBACK',
  'CODE',
  'GRAPH',
  'FOREACH',
  'RETURN',
  'FAIL',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Steps that end the run when their condition holds (a handler's early return / raise):
 * RETURN with `input.output` (an output mapping), FAIL with `input.message`. */
export const ENDING_TYPES: ReadonlySet<EventType> = new Set<EventType>(['RETURN', 'FAIL']);

/** Event types that use a product component (`app`), and the component kind it must be. */
export const COMPONENT_KINDS: Partial<Record<EventType, string>> = {
  ACTION: 'app',
  DB_ACTION: 'database',
  NOTIFICATION: 'notification',
  STORAGE: 'storage',
  PUBLISH: 'broker',
  QUOTA: 'quota',
  FALLBACK: 'fallback',
  GRAPH: 'graph',
};

export type Duration = number | string;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface RollbackSpec {
  type: EventType;
  event: string;
  app?: string | null;
  input: JsonObject;
  retries?: number;
  retry_delay?: Duration;
  timeout?: Duration | null;
}

export interface EventSpec {
  type: EventType;
  event: string;
  tag?: string | null;
  app?: string | null;
  input: JsonObject;
  retries?: number;
  retry_delay?: Duration;
  backoff?: 'fixed' | 'exponential';
  timeout?: Duration | null;
  allow_fail?: boolean;
  critical?: boolean;
  condition?: string | null;
  rollback?: RollbackSpec | null;
  description?: string;
  /** FOREACH: the list (an expression), the body run per item, iterations at once. */
  loop?: LoopSpec | null;
}

export interface LoopSpec {
  items: string;
  body: EventSpec[];
  max_concurrency?: number | null;
}

export interface SequenceSpec {
  tag: string;
  parents: string[];
  level?: number | null;
  events: EventSpec[];
  skip_if?: string | null;
  description?: string;
  /** A group of sequences whose concurrency options.groups bounds. */
  group?: string | null;
}

export type RollbackStrategy = 'reverse_all' | 'critical_only' | 'to_checkpoint' | 'none';

export interface WorkflowOptions {
  timeout?: Duration | null;
  rollback_strategy?: RollbackStrategy;
  max_concurrency?: number | null;
  groups?: Record<string, { max_concurrency: number }>;
}

export interface Point {
  x: number;
  y: number;
}

export type Direction = 'LR' | 'TB';

export interface Layout {
  positions: Record<string, Point>;
  direction: Direction;
}

export interface WorkflowSpec {
  sequences: SequenceSpec[];
  options: WorkflowOptions;
  envs?: { slug: string; active: boolean }[];
  signals: Record<string, { input: JsonObject; description?: string }>;
  queries: Record<string, { output: Json; description?: string }>;
  input: JsonObject;
  output?: Json;
  triggers?: { type: 'topic'; event: string; input?: Json }[];
  layout: Layout;
  recording?: JsonObject | null;
}

export const TAG_RE = /^[A-Za-z_][A-Za-z0-9_\-.]{0,99}$/;

export function emptySpec(): WorkflowSpec {
  return {
    sequences: [],
    options: { rollback_strategy: 'reverse_all' },
    signals: {},
    queries: {},
    input: {},
    layout: { positions: {}, direction: 'LR' },
  };
}

/** The tag a step is referenced by ($Step{tag}): its own tag, else its event name. */
export function stepTag(event: EventSpec): string {
  return event.tag || event.event;
}

export class SpecShapeError extends Error {}

function asJsonObject(value: unknown): JsonObject {
  return isRecord(value) ? (value as JsonObject) : {};
}

function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

function parseEvent(raw: unknown, where: string): EventSpec {
  if (!isRecord(raw)) throw new SpecShapeError(`${where} is not an object`);
  // Unknown types are kept as ACTION only for display would hide data; refuse instead.
  const type = raw.type;
  if (!isEventType(type)) throw new SpecShapeError(`${where}.type is not an event type`);
  const event: EventSpec = {
    ...(raw as object),
    type,
    event: typeof raw.event === 'string' ? raw.event : '',
    input: asJsonObject(raw.input),
  } as EventSpec;
  return event;
}

function parseSequence(raw: unknown, where: string): SequenceSpec {
  if (!isRecord(raw)) throw new SpecShapeError(`${where} is not an object`);
  if (typeof raw.tag !== 'string') throw new SpecShapeError(`${where}.tag is not a string`);
  const parents = Array.isArray(raw.parents)
    ? raw.parents.filter((p): p is string => typeof p === 'string')
    : [];
  const events = Array.isArray(raw.events)
    ? raw.events.map((e, i) => parseEvent(e, `${where}.events[${i}]`))
    : [];
  return { ...(raw as object), tag: raw.tag, parents, events } as SequenceSpec;
}

/** Check the shape the canvas relies on and fill defaults; never trust a bare cast. */
export function parseSpec(raw: unknown): WorkflowSpec {
  if (raw === null || raw === undefined) return emptySpec();
  if (!isRecord(raw)) throw new SpecShapeError('the spec is not an object');
  const sequences = Array.isArray(raw.sequences)
    ? raw.sequences.map((s, i) => parseSequence(s, `sequences[${i}]`))
    : [];
  const layoutRaw = isRecord(raw.layout) ? raw.layout : {};
  const positions: Record<string, Point> = {};
  if (isRecord(layoutRaw.positions)) {
    for (const [tag, p] of Object.entries(layoutRaw.positions)) {
      if (isRecord(p) && typeof p.x === 'number' && typeof p.y === 'number') {
        positions[tag] = { x: p.x, y: p.y };
      }
    }
  }
  const direction: Direction = layoutRaw.direction === 'TB' ? 'TB' : 'LR';
  return {
    ...(raw as object),
    sequences,
    options: isRecord(raw.options) ? (raw.options as WorkflowOptions) : {},
    signals: isRecord(raw.signals) ? (raw.signals as WorkflowSpec['signals']) : {},
    queries: isRecord(raw.queries) ? (raw.queries as WorkflowSpec['queries']) : {},
    input: asJsonObject(raw.input),
    layout: { positions, direction },
  } as WorkflowSpec;
}

/** A tag not in `taken`, derived from `base` (made tag-safe): base, base-2, base-3… */
export function uniqueTag(base: string, taken: ReadonlySet<string>): string {
  let clean = base.replace(/[^A-Za-z0-9_\-.]/g, '_').slice(0, 90);
  if (!clean || !/^[A-Za-z_]/.test(clean)) clean = `s_${clean}`;
  if (!taken.has(clean)) return clean;
  for (let n = 2; ; n += 1) {
    const candidate = `${clean}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export function allStepTags(spec: WorkflowSpec): Set<string> {
  const tags = new Set<string>();
  for (const seq of spec.sequences) {
    for (const ev of seq.events) {
      tags.add(stepTag(ev));
      for (const body of ev.loop?.body ?? []) tags.add(stepTag(body));
    }
  }
  return tags;
}

export function sequenceTags(spec: WorkflowSpec): Set<string> {
  return new Set(spec.sequences.map((s) => s.tag));
}
