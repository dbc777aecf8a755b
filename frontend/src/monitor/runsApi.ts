// Operator actions over /api/v1/runs (the engine's REST contract). Responses are checked
// for the shape the monitor needs, never cast blindly.

import { ApiError, listOf, type Api } from '../api';
import { parseSpec, type WorkflowSpec } from '../lib/spec';
import { parseEntry, type Entry } from './model';

type Rec = Record<string, unknown>;

function isRec(value: unknown): value is Rec {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : fallback;
}

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
  originKind: string;
}

export interface RunDetail {
  raw: Rec;
  id: number;
  product: string;
  workflow: string;
  version: number | null;
  environment: string;
  spec: WorkflowSpec | null;
  journal: Entry[];
}

function envSlug(value: unknown): string {
  if (isRec(value)) return str(value.slug);
  return str(value);
}

function versionOf(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (isRec(value) && typeof value.number === 'number') return value.number;
  return null;
}

export function parseRunSummary(raw: unknown): RunSummary | null {
  if (!isRec(raw) || typeof raw.id !== 'number') return null;
  return {
    id: raw.id,
    status: str(raw.status, 'pending'),
    environment: str(raw.environment_slug) || envSlug(raw.env ?? raw.environment),
    version: versionOf(raw.version),
    input: raw.input ?? null,
    createdAt: str(raw.created_at),
    startedAt: str(raw.started_at),
    finishedAt: str(raw.finished_at),
    lastSeq: typeof raw.last_seq === 'number' ? raw.last_seq : 0,
    originKind: str(raw.origin_kind),
  };
}

/** "<product>/<tag>", {product, tag} or {product: {slug}, tag} → [product, tag]. */
function workflowRef(raw: Rec): [string, string] {
  const wf = raw.workflow;
  if (typeof wf === 'string' && wf.includes('/')) {
    const [p, t] = wf.split('/', 2);
    return [p ?? '', t ?? ''];
  }
  if (isRec(wf)) {
    const product = isRec(wf.product) ? str(wf.product.slug) : str(wf.product);
    return [product || str(raw.product), str(wf.tag)];
  }
  return [isRec(raw.product) ? str(raw.product.slug) : str(raw.product), str(raw.workflow_tag ?? wf)];
}

export function parseRunDetail(raw: unknown): RunDetail {
  if (!isRec(raw) || typeof raw.id !== 'number') throw new ApiError('Unexpected run response', 500, 'bad_response', []);
  const [product, workflow] = workflowRef(raw);
  const specRaw = isRec(raw.spec) ? raw.spec : isRec(raw.version) && isRec(raw.version.spec) ? raw.version.spec : null;
  const journal = Array.isArray(raw.journal) ? raw.journal.map(parseEntry).filter((e): e is Entry => e !== null) : [];
  return {
    raw,
    id: raw.id,
    product,
    workflow,
    version: versionOf(raw.version),
    environment: envSlug(raw.environment_slug ?? raw.env ?? raw.environment),
    spec: specRaw ? parseSpec(specRaw) : null,
    journal,
  };
}

export class RunsApi {
  constructor(private readonly api: Api) {}

  async list(product: string, workflow: string, filters: { env?: string; status?: string } = {}): Promise<RunSummary[]> {
    const q = new URLSearchParams({ workflow: `${product}/${workflow}` });
    if (filters.env) q.set('env', filters.env);
    if (filters.status) q.set('status', filters.status);
    q.set('limit', '100');
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
    return isRec(body) && 'result' in body ? body.result : body;
  }

  async replay(id: number): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/replay`, {}));
  }

  /** A new run with this input (replacing the old one, not merged into it). */
  async restart(id: number, input: unknown): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/restart`, { input, merge: false }));
  }

  /** A new run going on from where this one failed (or from a checkpoint), skipping `skip`. */
  async resume(id: number, from: { skip?: string[]; checkpoint?: string }): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/resume`, from));
  }

  /** Replay from a step, with edited outputs for the steps before it. */
  async fork(id: number, step: string, outputs: Record<string, unknown>): Promise<number> {
    return idOf(await this.api.request('POST', `/runs/${id}/fork`, { step, outputs }));
  }
}

function idOf(body: unknown): number {
  if (isRec(body) && typeof body.id === 'number') return body.id;
  if (isRec(body) && isRec(body.run) && typeof body.run.id === 'number') return body.run.id;
  throw new ApiError('Unexpected response: no run id', 500, 'bad_response', []);
}
