// Operator actions over /api/v1/runs (the engine's REST contract). Responses are checked
// for the shape the monitor needs, never cast blindly.

import { ApiError, type Api } from '../api';
import { asText, isRecord, listOf, type JsonRecord } from '../lib/json';
import { parseSpec, type WorkflowSpec } from '../lib/spec';
import { parseEntry, type Entry } from './model';

export interface RunSummary {
  id: number;
  status: string;
  environment: string;
  version: number | null;
  input: unknown;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  lastSeq: number;
  origin: number | null;
  originKind: string;
}

/** Whether the asking user may act on a run, and why not (from the run detail). */
export interface RunActions {
  allowed: boolean;
  why: string;
}

export interface RelatedRun {
  id: number;
  status: string;
  originKind: string;
  environment: string;
  createdAt: string;
}

export interface RunRelated {
  origins: RelatedRun[];
  derived: RelatedRun[];
  parent: RelatedRun[];
  children: RelatedRun[];
}

export interface JsonChange {
  path: string;
  a: unknown;
  b: unknown;
  change: string;
}

export interface StepComparison {
  tag: string;
  a: { status: string; attempt: number } | null;
  b: { status: string; attempt: number } | null;
  sameStatus: boolean;
  sameOutput: boolean;
  outputDiff: JsonChange[];
}

export interface RunComparison {
  a: { id: number; status: string; version: number | null };
  b: { id: number; status: string; version: number | null };
  inputDiff: JsonChange[];
  outputDiff: JsonChange[];
  steps: StepComparison[];
}

export interface RunDetail {
  raw: JsonRecord;
  id: number;
  product: string;
  workflow: string;
  version: number | null;
  environment: string;
  /** OpenTelemetry trace id (32 hex digits); "" when tracing is off. */
  traceId: string;
  spec: WorkflowSpec | null;
  journal: Entry[];
  origin: number | null;
  originKind: string;
  actions: RunActions;
}

function envSlug(value: unknown): string {
  if (isRecord(value)) return asText(value.slug);
  return asText(value);
}

function versionOf(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (isRecord(value) && typeof value.number === 'number') return value.number;
  return null;
}

export function parseRunSummary(raw: unknown): RunSummary | null {
  if (!isRecord(raw) || typeof raw.id !== 'number') return null;
  return {
    id: raw.id,
    status: asText(raw.status, 'pending'),
    environment: asText(raw.environment_slug) || envSlug(raw.env ?? raw.environment),
    version: versionOf(raw.version),
    input: raw.input ?? null,
    createdAt: asText(raw.created_at),
    startedAt: asText(raw.started_at),
    finishedAt: asText(raw.finished_at),
    lastSeq: typeof raw.last_seq === 'number' ? raw.last_seq : 0,
    origin: typeof raw.origin === 'number' ? raw.origin : null,
    originKind: asText(raw.origin_kind),
  };
}

function relatedList(raw: unknown): RelatedRun[] {
  return listOf(raw)
    .filter(isRecord)
    .filter((r) => typeof r.id === 'number')
    .map((r) => ({ id: r.id as number, status: asText(r.status), originKind: asText(r.origin_kind), environment: asText(r.environment), createdAt: asText(r.created_at) }));
}

export function parseRelated(raw: unknown): RunRelated {
  const r = isRecord(raw) ? raw : {};
  return { origins: relatedList(r.origins), derived: relatedList(r.derived), parent: relatedList(r.parent), children: relatedList(r.children) };
}

function changes(raw: unknown): JsonChange[] {
  return listOf(raw)
    .filter(isRecord)
    .map((c) => ({ path: asText(c.path, '$'), a: c.a ?? null, b: c.b ?? null, change: asText(c.change, 'changed') }));
}

function side(raw: unknown): { status: string; attempt: number } | null {
  return isRecord(raw) ? { status: asText(raw.status), attempt: typeof raw.attempt === 'number' ? raw.attempt : 0 } : null;
}

function runRef(raw: unknown): { id: number; status: string; version: number | null } {
  const r = isRecord(raw) ? raw : {};
  return { id: typeof r.id === 'number' ? r.id : 0, status: asText(r.status), version: versionOf(r.version) };
}

export function parseComparison(raw: unknown): RunComparison {
  if (!isRecord(raw)) throw new ApiError('Unexpected compare response', 500, 'bad_response', []);
  return {
    a: runRef(raw.a),
    b: runRef(raw.b),
    inputDiff: changes(raw.input_diff),
    outputDiff: changes(raw.output_diff),
    steps: listOf(raw.steps)
      .filter(isRecord)
      .map((s) => ({ tag: asText(s.tag), a: side(s.a), b: side(s.b), sameStatus: s.same_status === true, sameOutput: s.same_output === true, outputDiff: changes(s.output_diff) })),
  };
}

/** "<product>/<tag>", {product, tag} or {product: {slug}, tag} → [product, tag]. */
function workflowRef(raw: JsonRecord): [string, string] {
  const wf = raw.workflow;
  if (typeof wf === 'string' && wf.includes('/')) {
    const [p, t] = wf.split('/', 2);
    return [p ?? '', t ?? ''];
  }
  if (isRecord(wf)) {
    const product = isRecord(wf.product) ? asText(wf.product.slug) : asText(wf.product);
    return [product || asText(raw.product), asText(wf.tag)];
  }
  return [isRecord(raw.product) ? asText(raw.product.slug) : asText(raw.product), asText(raw.workflow_tag ?? wf)];
}

export function parseRunDetail(raw: unknown): RunDetail {
  if (!isRecord(raw) || typeof raw.id !== 'number') throw new ApiError('Unexpected run response', 500, 'bad_response', []);
  const [product, workflow] = workflowRef(raw);
  const specRaw = isRecord(raw.spec) ? raw.spec : isRecord(raw.version) && isRecord(raw.version.spec) ? raw.version.spec : null;
  const journal = Array.isArray(raw.journal) ? raw.journal.map(parseEntry).filter((e): e is Entry => e !== null) : [];
  return {
    raw,
    id: raw.id,
    product,
    workflow,
    version: versionOf(raw.version),
    environment: envSlug(raw.environment_slug ?? raw.env ?? raw.environment),
    traceId: asText(raw.trace_id),
    spec: specRaw ? parseSpec(specRaw) : null,
    journal,
    origin: typeof raw.origin === 'number' ? raw.origin : null,
    originKind: asText(raw.origin_kind),
    // Without the server's word, offer nothing: the server refuses what it must anyway.
    actions: isRecord(raw.actions) ? { allowed: raw.actions.allowed === true, why: asText(raw.actions.why) } : { allowed: false, why: '' },
  };
}

export class RunsApi {
  constructor(private readonly api: Api) {}

  async list(product: string, workflow: string, filters: { env?: string; status?: string; limit?: number } = {}): Promise<RunSummary[]> {
    const q = new URLSearchParams({ workflow: `${product}/${workflow}` });
    if (filters.env) q.set('env', filters.env);
    if (filters.status) q.set('status', filters.status);
    q.set('limit', String(filters.limit ?? 100));
    const body = await this.api.request('GET', `/runs?${q.toString()}`);
    return listOf(body)
      .map(parseRunSummary)
      .filter((r): r is RunSummary => r !== null);
  }

  async get(id: number | string): Promise<RunDetail> {
    return parseRunDetail(await this.api.request('GET', `/runs/${encodeURIComponent(String(id))}`));
  }

  async start(product: string, workflow: string, env: string, input: unknown): Promise<number> {
    const body = await this.api.request('POST', '/runs', { workflow: `${product}/${workflow}`, env, input });
    return idOf(body);
  }

  async signal(id: number, name: string, payload: unknown): Promise<void> {
    await this.api.request('POST', `/runs/${id}/signals/${encodeURIComponent(name)}`, payload ?? {});
  }

  async cancel(id: number, reason = ''): Promise<void> {
    await this.api.request('POST', `/runs/${id}/cancel`, reason ? { reason } : {});
  }

  /** A declared query's answer (the server wraps it as {run, query, result}). */
  async query(id: number, name: string): Promise<unknown> {
    const body = await this.api.request('GET', `/runs/${id}/query/${encodeURIComponent(name)}`);
    return isRecord(body) && 'result' in body ? body.result : body;
  }

  async replay(id: number, reason = ''): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/replay`, reason ? { reason } : {}));
  }

  /** A new run with this input (replacing the old one, not merged into it). */
  async restart(id: number, input: unknown, reason = ''): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/restart`, { input, merge: false, ...(reason ? { reason } : {}) }));
  }

  /** A new run going on from where this one failed (or from a checkpoint), skipping `skip`. */
  async resume(id: number, from: { skip?: string[]; checkpoint?: string }, reason = ''): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/resume`, { ...from, ...(reason ? { reason } : {}) }));
  }

  /** Replay from a step, with edited outputs for the steps before it. */
  async fork(id: number, step: string, outputs: Record<string, unknown>, reason = ''): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/fork`, { step, outputs, ...(reason ? { reason } : {}) }));
  }

  /** Runs made from this one and the ones it was made from (lineage), parent and children. */
  async related(id: number): Promise<RunRelated> {
    return parseRelated(await this.api.request('GET', `/runs/${id}/related`));
  }

  /** Input, output and per-step output differences between two runs (server-computed). */
  async compare(id: number, other: number): Promise<RunComparison> {
    return parseComparison(await this.api.request('GET', `/runs/${id}/compare/${other}`));
  }
}

function idOf(body: unknown): number {
  if (isRecord(body) && typeof body.id === 'number') return body.id;
  if (isRecord(body) && isRecord(body.run) && typeof body.run.id === 'number') return body.run.id;
  throw new ApiError('Unexpected response: no run id', 500, 'bad_response', []);
}
