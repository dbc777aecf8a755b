// Every run of a product (GET /api/v1/products/<slug>/runs, …/runs/stats) and bulk actions
// (POST /api/v1/runs/bulk): the filters as a query string, the answers checked for the shape
// the page needs, and a bulk action sent in chunks so the page can show progress.

import type { Api } from '../api';
import { asText, isRecord } from '../lib/json';

export interface RunFilters {
  workflow: string;
  env: string;
  status: string;
  failedStep: string;
  since: string; // '', '1h', '24h', '7d'
  where: string;
  run: string;
}

export const EMPTY_FILTERS: RunFilters = { workflow: '', env: '', status: '', failedStep: '', since: '', where: '', run: '' };

const SINCE_MS: Record<string, number> = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };

/** The filters as the API's parameters (empty ones left out; `since` becomes created_after). */
export function filterParams(f: RunFilters, now: number = Date.now()): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.workflow) out.workflow = f.workflow;
  if (f.env) out.env = f.env;
  if (f.status) out.status = f.status;
  if (f.failedStep) out.failed_step = f.failedStep;
  const since = SINCE_MS[f.since];
  if (since) out.created_after = new Date(now - since).toISOString();
  if (f.where.trim()) out.where = f.where.trim();
  if (f.run.trim()) out.run = f.run.trim().replace(/^#/, '');
  return out;
}

/** Filters from / to the page's own URL (so a filtered view can be shared). */
export function filtersFromSearch(search: string): RunFilters {
  const q = new URLSearchParams(search);
  return {
    workflow: q.get('workflow') ?? '',
    env: q.get('env') ?? '',
    status: q.get('status') ?? '',
    failedStep: q.get('failed_step') ?? '',
    since: q.get('since') ?? '',
    where: q.get('where') ?? '',
    run: q.get('run') ?? '',
  };
}

export function filtersToSearch(f: RunFilters): string {
  const q = new URLSearchParams();
  const pairs: [string, string][] = [
    ['workflow', f.workflow], ['env', f.env], ['status', f.status], ['failed_step', f.failedStep],
    ['since', f.since], ['where', f.where], ['run', f.run],
  ];
  for (const [k, v] of pairs) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface RunRow {
  id: number;
  workflow: string;
  environment: string;
  version: number | null;
  status: string;
  failedStep: string;
  originKind: string;
  origin: number | null;
  createdAt: string;
  durationMs: number | null;
  input: unknown;
}

export interface GridRow {
  key: string;
  workflow: string;
  tag: string;
}

export interface RunsPage {
  runs: RunRow[];
  next: string | null;
  rows: GridRow[];
  cells: Record<string, Record<string, string>>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function parseRunRow(raw: unknown): RunRow | null {
  if (!isRecord(raw) || typeof raw.id !== 'number') return null;
  return {
    id: raw.id,
    workflow: asText(raw.workflow),
    environment: asText(raw.environment),
    version: num(raw.version),
    status: asText(raw.status, 'pending'),
    failedStep: asText(raw.failed_step),
    originKind: asText(raw.origin_kind),
    origin: num(raw.origin),
    createdAt: asText(raw.created_at),
    durationMs: num(raw.duration_ms),
    input: raw.input ?? null,
  };
}

export function parseRunsPage(raw: unknown): RunsPage {
  if (!isRecord(raw) || !Array.isArray(raw.results)) return { runs: [], next: null, rows: [], cells: {} };
  const runs = raw.results.map(parseRunRow).filter((r): r is RunRow => r !== null);
  const grid = isRecord(raw.grid) ? raw.grid : {};
  const rows: GridRow[] = Array.isArray(grid.rows)
    ? grid.rows.filter(isRecord).map((r) => ({ key: asText(r.key), workflow: asText(r.workflow), tag: asText(r.tag) }))
    : [];
  const cells: Record<string, Record<string, string>> = {};
  if (isRecord(grid.cells)) {
    for (const [run, byKey] of Object.entries(grid.cells)) {
      if (!isRecord(byKey)) continue;
      cells[run] = Object.fromEntries(Object.entries(byKey).map(([k, v]) => [k, asText(v)]));
    }
  }
  return { runs, next: typeof raw.next === 'string' ? raw.next : null, rows, cells };
}

export interface Bucket {
  start: number; // epoch seconds (uPlot's x axis)
  started: number;
  completed: number;
  failed: number;
  p50: number | null;
  p95: number | null;
}

export interface StatsGroup {
  workflow: string;
  environment: string;
  started: number;
  completed: number;
  failed: number;
  p50: number | null;
  p95: number | null;
}

export interface RunStats {
  buckets: Bucket[];
  groups: StatsGroup[];
  intervalS: number;
}

function figures(r: Record<string, unknown>) {
  return {
    started: num(r.started) ?? 0,
    completed: num(r.completed) ?? 0,
    failed: num(r.failed) ?? 0,
    p50: num(r.p50_ms),
    p95: num(r.p95_ms),
  };
}

export function parseStats(raw: unknown): RunStats {
  if (!isRecord(raw)) return { buckets: [], groups: [], intervalS: 0 };
  const buckets = Array.isArray(raw.buckets)
    ? raw.buckets.filter(isRecord).map((b) => ({ start: Date.parse(asText(b.start)) / 1000, ...figures(b) }))
    : [];
  const groups = Array.isArray(raw.groups)
    ? raw.groups.filter(isRecord).map((g) => ({ workflow: asText(g.workflow), environment: asText(g.environment), ...figures(g) }))
    : [];
  return { buckets: buckets.filter((b) => Number.isFinite(b.start)), groups, intervalS: num(raw.interval_s) ?? 0 };
}

export type BulkAction = 'cancel' | 'retry' | 'replay' | 'fork';

export interface BulkTarget {
  runs?: number[];
  filter?: Record<string, string>;
}

export interface BulkPreview {
  count: number;
  runs: number[];
  refused: { run: number; reason: string }[];
  versions: Record<string, number | null>;
  rerun: Record<string, number>;
  confirmRequired: boolean;
  confirmText: string;
  cap: number;
}

export function parseBulkPreview(raw: unknown): BulkPreview {
  const r = isRecord(raw) ? raw : {};
  const ids = Array.isArray(r.runs) ? r.runs.filter((x): x is number => typeof x === 'number') : [];
  const refused = Array.isArray(r.refused)
    ? r.refused.filter(isRecord).map((x) => ({ run: num(x.run) ?? 0, reason: asText(x.reason) }))
    : [];
  const versions: Record<string, number | null> = {};
  if (isRecord(r.versions)) for (const [k, v] of Object.entries(r.versions)) versions[k] = num(v);
  const rerun: Record<string, number> = {};
  if (isRecord(r.rerun)) for (const [k, v] of Object.entries(r.rerun)) rerun[k] = num(v) ?? 0;
  return {
    count: num(r.count) ?? ids.length,
    runs: ids,
    refused,
    versions,
    rerun,
    confirmRequired: r.confirm_required === true,
    confirmText: asText(r.confirm_text),
    cap: num(r.cap) ?? 0,
  };
}

export interface BulkProgress {
  sent: number;
  total: number;
  done: number;
  failed: number;
  messages: string[];
}

/** Split ids into chunks of `size` (each one request, so progress shows between them). */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)));
  return out;
}

export class ProductRunsApi {
  constructor(
    private readonly api: Api,
    private readonly product: string,
  ) {}

  async page(filters: RunFilters, before: string | null, limit = 50): Promise<RunsPage> {
    const q = new URLSearchParams({ ...filterParams(filters), limit: String(limit) });
    if (before) q.set('before', before);
    return parseRunsPage(await this.api.request('GET', `/products/${encodeURIComponent(this.product)}/runs?${q.toString()}`));
  }

  async stats(filters: RunFilters): Promise<RunStats> {
    const params = filterParams(filters);
    delete params.run;
    const q = new URLSearchParams(params);
    return parseStats(await this.api.request('GET', `/products/${encodeURIComponent(this.product)}/runs/stats?${q.toString()}`));
  }

  async preview(action: BulkAction, target: BulkTarget, step: string): Promise<BulkPreview> {
    const body = { product: this.product, action, ...target, ...(step ? { step } : {}), preview: true };
    return parseBulkPreview(await this.api.request('POST', '/runs/bulk', body));
  }

  /** The previewed runs, in chunks (each idempotent by its own key): `onProgress` after each. */
  async apply(
    action: BulkAction,
    preview: BulkPreview,
    opts: { step: string; reason: string; confirm: string; key: string; chunk?: number },
    onProgress: (p: BulkProgress) => void,
  ): Promise<BulkProgress> {
    const progress: BulkProgress = { sent: 0, total: preview.runs.length, done: 0, failed: 0, messages: [] };
    const parts = chunks(preview.runs, opts.chunk ?? 5);
    for (const [i, ids] of parts.entries()) {
      const body: Record<string, unknown> = { product: this.product, action, runs: ids, idempotency_key: `${opts.key}-${i}` };
      if (opts.step) body.step = opts.step;
      if (opts.reason) body.reason = opts.reason;
      // The typed confirmation covers the whole selection; each chunk is under the threshold
      // or carries it with its own count.
      if (preview.confirmRequired) body.confirm = opts.confirm.replace(/\d+/, String(ids.length));
      const answer = await this.api.request('POST', '/runs/bulk', body);
      const r = isRecord(answer) ? answer : {};
      progress.sent += ids.length;
      progress.done += num(r.done) ?? 0;
      progress.failed += num(r.failed) ?? 0;
      if (Array.isArray(r.results)) {
        for (const x of r.results) {
          if (isRecord(x) && x.ok === false) progress.messages.push(`#${asText(x.run)}: ${asText(x.message)}`);
        }
      }
      onProgress({ ...progress, messages: [...progress.messages] });
    }
    return progress;
  }
}
