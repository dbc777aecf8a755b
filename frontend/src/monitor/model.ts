// The run monitor's model: a run's view rebuilt from its journal. Pure (no DOM, no React):
// the server sends journal entries (each once, in seq order) or a snapshot, and
// `applyEntry` / `applySnapshot` fold them into a RunView. Tested in ./__tests__.

import { asNumber, asText, isRecord, type JsonRecord } from '../lib/json';
import { stepTag, type WorkflowSpec } from '../lib/spec';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type StepState =
  | 'pending'
  | 'running'
  | 'retrying'
  | 'waiting'
  | 'completed'
  | 'failed'
  | 'failed_allowed'
  | 'skipped'
  | 'rolled_back'
  | 'cancelled'
  | 'not_run';

export type RunStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'rolled_back' | 'cancelled';

export const RUN_FINISHED: readonly string[] = ['completed', 'failed', 'rolled_back', 'cancelled'];

export interface Attempt {
  n: number;
  startedAt: string | null;
  finishedAt: string | null;
  status: string;
  error: Json;
}

export interface StepView {
  tag: string;
  sequence: string;
  status: StepState;
  attempt: number;
  /** retries + 1 from the spec; 0 when unknown. */
  maxAttempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  input: Json;
  output: Json;
  error: Json;
  attempts: Attempt[];
  waitingFor: string;
  rollback: string;
  /** A FOREACH step: how many iterations its list gave (undefined until it started them). */
  iterations?: number;
  /** The compensation call: its input and output (or error), from the journal. */
  rollbackInput: Json;
  rollbackOutput: Json;
  rollbackError: Json;
  /** Why a step ended without finishing (the run ended first), from the journal. */
  why: string;
}

export interface LogLine {
  seq: number;
  at: string;
  step: string;
  level: string;
  message: string;
}

export interface Entry {
  run: number;
  seq: number;
  kind: string;
  step: string;
  data: Json;
  at: string;
}

export interface RunView {
  id: number;
  status: string;
  input: Json;
  output: Json;
  error: Json;
  state: Record<string, Json>;
  checkpoints: { name: string; step: string; at: string; data: Json }[];
  signals: { name: string; payload: Json; at: string; by: string }[];
  steps: Record<string, StepView>;
  sequences: Record<string, string>;
  log: LogLine[];
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  lastSeq: number;
  version: number | null;
  environment: string;
}

function strOrNull(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

function json(value: unknown): Json {
  return value === undefined ? null : (value as Json);
}

const STEP_STATES: readonly string[] = [
  'pending',
  'running',
  'retrying',
  'waiting',
  'completed',
  'failed',
  'failed_allowed',
  'skipped',
  'rolled_back',
  'cancelled',
  'not_run',
];

function stepState(value: unknown): StepState {
  return STEP_STATES.includes(asText(value)) ? (asText(value) as StepState) : 'pending';
}

function blankStep(tag: string, sequence = '', maxAttempts = 0): StepView {
  return {
    tag,
    sequence,
    status: 'pending',
    attempt: 0,
    maxAttempts,
    startedAt: null,
    finishedAt: null,
    input: null,
    output: null,
    error: null,
    attempts: [],
    waitingFor: '',
    rollback: '',
    rollbackInput: null,
    rollbackOutput: null,
    rollbackError: null,
    why: '',
  };
}

/** An empty view with every step of the spec pending (so the canvas shows them all). */
export function emptyRun(id: number, spec?: WorkflowSpec | null): RunView {
  const steps: Record<string, StepView> = {};
  for (const seq of spec?.sequences ?? []) {
    for (const event of seq.events) {
      const tag = stepTag(event);
      steps[tag] = blankStep(tag, seq.tag, (event.retries ?? 0) + 1);
    }
  }
  return {
    id,
    status: 'pending',
    input: null,
    output: null,
    error: null,
    state: {},
    checkpoints: [],
    signals: [],
    steps,
    sequences: {},
    log: [],
    createdAt: null,
    startedAt: null,
    finishedAt: null,
    lastSeq: 0,
    version: null,
    environment: '',
  };
}

/** Parse one `entry` message (or a journal row of GET /runs/<id>); null if malformed. */
export function parseEntry(raw: unknown): Entry | null {
  if (!isRecord(raw) || typeof raw.seq !== 'number' || typeof raw.kind !== 'string') return null;
  return {
    run: asNumber(raw.run, 0),
    seq: raw.seq,
    kind: raw.kind,
    step: asText(raw.step),
    data: json(raw.data),
    at: asText(raw.at),
  };
}

function parseAttempts(raw: unknown): Attempt[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter(isRecord).map((a) => ({
    n: asNumber(a.n, 0),
    startedAt: strOrNull(a.started_at),
    finishedAt: strOrNull(a.finished_at),
    status: asText(a.status),
    error: json(a.error),
  }));
}

/** Fold a snapshot (`{run, steps, sequences, last_seq}` or a run detail) into the view. */
export function applySnapshot(view: RunView, raw: unknown): RunView {
  if (!isRecord(raw)) return view;
  const run = isRecord(raw.run) ? raw.run : raw;
  const steps = { ...view.steps };
  for (const s of Array.isArray(raw.steps) ? raw.steps.filter(isRecord) : []) {
    const tag = asText(s.tag);
    if (!tag) continue;
    const old = steps[tag] ?? blankStep(tag, asText(s.sequence));
    steps[tag] = {
      ...old,
      sequence: asText(s.sequence, old.sequence),
      status: stepState(s.status),
      attempt: asNumber(s.attempt, old.attempt),
      startedAt: strOrNull(s.started_at),
      finishedAt: strOrNull(s.finished_at),
      input: json(s.input),
      output: json(s.output),
      error: json(s.error),
      attempts: parseAttempts(s.attempts),
      rollback: asText(s.rollback_status),
    };
    const loop = isRecord(s.wait) && isRecord(s.wait.loop) ? s.wait.loop : null;
    if (loop) steps[tag] = { ...steps[tag]!, iterations: asNumber(loop.n, 0) };
  }
  const sequences = { ...view.sequences };
  for (const s of Array.isArray(raw.sequences) ? raw.sequences.filter(isRecord) : []) {
    if (typeof s.tag === 'string') sequences[s.tag] = asText(s.status);
  }
  const state = isRecord(run.state) ? (run.state as Record<string, Json>) : view.state;
  const lastSeq = asNumber(raw.last_seq ?? run.last_seq, view.lastSeq);
  const env = isRecord(run.environment) ? asText(run.environment.slug) : asText(run.environment_slug ?? run.environment, view.environment);
  return {
    ...view,
    id: asNumber(run.id, view.id),
    status: asText(run.status, view.status),
    input: run.input === undefined ? view.input : json(run.input),
    output: run.output === undefined ? view.output : json(run.output),
    error: run.error === undefined ? view.error : json(run.error),
    state,
    steps,
    sequences,
    createdAt: strOrNull(run.created_at) ?? view.createdAt,
    startedAt: strOrNull(run.started_at) ?? view.startedAt,
    finishedAt: strOrNull(run.finished_at) ?? view.finishedAt,
    version: typeof run.version === 'number' ? run.version : isRecord(run.version) ? asNumber(run.version.number, 0) : view.version,
    environment: env,
    lastSeq,
  };
}

function dataRec(entry: Entry): JsonRecord {
  return isRecord(entry.data) ? entry.data : {};
}

function updateStep(view: RunView, tag: string, change: (step: StepView) => StepView): RunView {
  const old = view.steps[tag] ?? blankStep(tag);
  return { ...view, steps: { ...view.steps, [tag]: change(old) } };
}

function closeAttempt(step: StepView, status: string, at: string, error: Json = null): Attempt[] {
  const attempts = [...step.attempts];
  const last = attempts[attempts.length - 1];
  if (last && !last.finishedAt) attempts[attempts.length - 1] = { ...last, finishedAt: at, status, error };
  return attempts;
}

const RUN_END: Record<string, RunStatus> = {
  run_completed: 'completed',
  run_failed: 'failed',
  run_rolled_back: 'rolled_back',
  run_cancelled: 'cancelled',
};

/** Apply one journal entry. Entries at or below `lastSeq` are ignored (already applied). */
export function applyEntry(view: RunView, entry: Entry): RunView {
  if (entry.seq <= view.lastSeq) return view;
  let next: RunView = { ...view, lastSeq: entry.seq };
  const d = dataRec(entry);
  const at = entry.at;
  switch (entry.kind) {
    case 'run_started':
      next = { ...next, status: 'running', startedAt: next.startedAt ?? at, input: d.input === undefined ? next.input : json(d.input) };
      if (typeof d.version === 'number') next.version = d.version;
      break;
    case 'run_waiting':
      next.status = 'waiting';
      break;
    case 'run_completed':
    case 'run_failed':
    case 'run_rolled_back':
    case 'run_cancelled':
      next = { ...next, status: RUN_END[entry.kind]!, finishedAt: at };
      // A run rolled back by ctx.trigger_rollback still ends with its handler's output.
      if (entry.kind === 'run_completed' || (entry.kind === 'run_rolled_back' && d.output !== undefined)) next.output = json(d.output);
      if (entry.kind !== 'run_completed') next.error = json(d.error);
      break;
    case 'step_started':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: 'running',
        attempt: asNumber(d.attempt, s.attempt + 1),
        startedAt: s.startedAt ?? at,
        finishedAt: null,
        waitingFor: '',
        attempts: [...s.attempts, { n: asNumber(d.attempt, s.attempt + 1), startedAt: at, finishedAt: null, status: 'running', error: null }],
      }));
      if (next.status === 'waiting' || next.status === 'pending') next.status = 'running';
      break;
    case 'step_completed':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: 'completed',
        output: json(d.output),
        error: null,
        finishedAt: at,
        waitingFor: '',
        attempts: closeAttempt(s, 'completed', at),
      }));
      break;
    case 'step_failed':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: d.allowed === true ? 'failed_allowed' : 'failed',
        error: json(d.error),
        finishedAt: at,
        attempts: closeAttempt(s, 'failed', at, json(d.error)),
      }));
      break;
    case 'step_retrying':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: 'retrying',
        error: json(d.error),
        attempts: closeAttempt(s, 'failed', at, json(d.error)),
      }));
      break;
    case 'step_skipped':
      next = updateStep(next, entry.step, (s) => ({ ...s, status: 'skipped', finishedAt: at }));
      break;
    case 'step_waiting': {
      const signals = Array.isArray(d.signals) ? d.signals.map((x) => asText(x)).join(', ') : '';
      const loop = isRecord(d.loop) ? asNumber(d.loop.iterations, 0) : null;
      const waitingFor = loop !== null ? `${loop} iterations` : signals ? `signal ${signals}` : d.child !== undefined ? `child run ${asText(d.child)}` : d.until ? `until ${asText(d.until)}` : '';
      next = updateStep(next, entry.step, (s) => ({ ...s, status: 'waiting', waitingFor, ...(loop !== null ? { iterations: loop } : {}) }));
      break;
    }
    case 'step_rolled_back':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: 'rolled_back',
        rollback: 'completed',
        rollbackInput: d.input === undefined ? s.rollbackInput : json(d.input),
        rollbackOutput: json(d.output),
        rollbackError: null,
      }));
      break;
    case 'rollback_failed':
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        rollback: d.final === true ? 'failed' : 'retrying',
        rollbackInput: d.input === undefined ? s.rollbackInput : json(d.input),
        rollbackError: json(d.error),
      }));
      break;
    case 'step_cancelled':
    case 'step_not_run':
      // The run ended before this step finished: its final state, and why.
      next = updateStep(next, entry.step, (s) => ({
        ...s,
        status: entry.kind === 'step_cancelled' ? 'cancelled' : 'not_run',
        finishedAt: s.startedAt ? at : null,
        waitingFor: '',
        why: asText(d.why),
        attempts: closeAttempt(s, 'cancelled', at),
      }));
      break;
    case 'sequence_started':
    case 'sequence_completed':
    case 'sequence_skipped':
    case 'sequence_failed':
    case 'sequence_cancelled':
    case 'sequence_not_run':
      next.sequences = { ...next.sequences, [entry.step]: entry.kind.slice('sequence_'.length) };
      if (entry.kind === 'sequence_skipped') {
        const steps = { ...next.steps };
        for (const s of Object.values(steps)) if (s.sequence === entry.step && s.status === 'pending') steps[s.tag] = { ...s, status: 'skipped' };
        next.steps = steps;
      }
      break;
    case 'state_set':
      if (isRecord(d.values)) next.state = { ...next.state, ...(d.values as Record<string, Json>) };
      break;
    case 'checkpoint':
      next.checkpoints = [...next.checkpoints, { name: asText(d.name, entry.step), step: entry.step, at, data: json(d.data) }];
      break;
    case 'signal_received':
      next.signals = [...next.signals, { name: asText(d.name), payload: json(d.payload), at, by: asText(d.by) }];
      break;
    default:
      break;
  }
  if (entry.kind === 'log' || entry.kind.startsWith('rollback') || entry.kind === 'signal_received') {
    const message = entry.kind === 'log' ? asText(d.message, JSON.stringify(entry.data)) : `${entry.kind.replace('_', ' ')} ${JSON.stringify(entry.data)}`;
    next.log = [...next.log, { seq: entry.seq, at, step: entry.step, level: asText(d.level, 'info'), message }].slice(-2000);
  }
  return next;
}

/** Apply many entries in seq order. */
export function applyEntries(view: RunView, entries: readonly Entry[]): RunView {
  return [...entries].sort((a, b) => a.seq - b.seq).reduce(applyEntry, view);
}

/** The view with no timer left running once the run has ended: a step the journal still
 * shows open (a journal written before runs closed their steps) ends with the run. The
 * statuses themselves stay as the journal holds them. */
export function settled(view: RunView): RunView {
  if (!RUN_FINISHED.includes(view.status) || !view.finishedAt) return view;
  let steps: Record<string, StepView> | null = null;
  for (const s of Object.values(view.steps)) {
    if (s.startedAt && !s.finishedAt) {
      steps = steps ?? { ...view.steps };
      steps[s.tag] = { ...s, finishedAt: view.finishedAt };
    }
  }
  return steps ? { ...view, steps } : view;
}

/** The label a node shows: "retrying 2/3", "running (attempt 2)", "failed allowed"… */
export function stepLabel(step: StepView): string {
  if (step.status === 'retrying') return `retrying ${step.attempt + 1}/${step.maxAttempts || '?'}`;
  if (step.status === 'running' && step.attempt > 1) return `running ${step.attempt}/${step.maxAttempts || '?'}`;
  if (step.status === 'waiting') return step.waitingFor ? `waiting: ${step.waitingFor}` : 'waiting';
  return step.status.replace('_', ' ');
}

/**
 * Why a sequence did not run, for its card: a sequence whose `skip_if` held is skipped
 * as a whole. Its steps stay in the plan (the plan is compiled before the run, the
 * condition is evaluated when the sequence becomes ready) and are journaled `skipped`;
 * none of them ever starts. Null for a sequence that was not skipped.
 */
export function skipNote(seq: { skip_if?: string | null }, status: string): string | null {
  if (status !== 'skipped') return null;
  return seq.skip_if ? `skipped: skip_if held (${seq.skip_if})` : 'skipped';
}

/** A step row's label on a sequence card: a skipped sequence's steps never started. */
export function rowLabel(step: StepView | undefined, sequenceStatus: string): string {
  if (sequenceStatus === 'skipped' && (!step || step.status === 'skipped' || step.status === 'pending')) {
    return 'not run: sequence skipped';
  }
  return step ? stepLabel(step) : 'pending';
}

/** Milliseconds between two ISO times, or from start to `now` while still running. */
export function durationMs(start: string | null, end: string | null, now = Date.now()): number | null {
  if (!start) return null;
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : now;
  return Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, b - a) : null;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Gantt rows: one per step that started, ordered by start, with offsets from the run start. */
export function timeline(view: RunView, now = Date.now()): { tag: string; status: StepState; start: number; end: number }[] {
  const origin = Date.parse(view.startedAt ?? view.createdAt ?? '') || Math.min(...Object.values(view.steps).map((s) => Date.parse(s.startedAt ?? '') || Infinity));
  if (!Number.isFinite(origin)) return [];
  return Object.values(view.steps)
    .filter((s) => s.startedAt)
    .map((s) => {
      const start = Date.parse(s.startedAt!) - origin;
      const end = (s.finishedAt ? Date.parse(s.finishedAt) : RUN_FINISHED.includes(view.status) ? Date.parse(view.finishedAt ?? '') || now : now) - origin;
      return { tag: s.tag, status: s.status, start: Math.max(0, start), end: Math.max(start, end) };
    })
    .sort((a, b) => a.start - b.start || a.tag.localeCompare(b.tag));
}

/** Steps whose status or output differ between two runs (for "compare"). */
export function compareRuns(a: RunView, b: RunView): { tag: string; left: StepView | null; right: StepView | null; same: boolean }[] {
  const tags = [...new Set([...Object.keys(a.steps), ...Object.keys(b.steps)])];
  return tags.map((tag) => {
    const left = a.steps[tag] ?? null;
    const right = b.steps[tag] ?? null;
    const same = !!left && !!right && left.status === right.status && JSON.stringify(left.output) === JSON.stringify(right.output);
    return { tag, left, right, same };
  });
}
