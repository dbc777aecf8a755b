// A small typed client for /api/v1 (session auth + CSRF). Every response is checked for the
// shape the UI needs; errors become ApiError with the server's {code, errors:[{path,message}]}.

import { asText, isRecord, listOf } from './lib/json';
import type { Issue } from './lib/paths';
import { parseSpec, type WorkflowSpec } from './lib/spec';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly issues: Issue[],
  ) {
    super(message);
  }
}

function issuesOf(body: unknown): Issue[] {
  if (!isRecord(body)) return [];
  const out: Issue[] = [];
  if (Array.isArray(body.errors)) {
    for (const e of body.errors) {
      if (isRecord(e)) out.push({ path: asText(e.path), message: asText(e.message, 'invalid') });
    }
  }
  return out;
}

function messageOf(body: unknown, status: number): string {
  if (isRecord(body)) {
    if (typeof body.message === 'string') return body.message;
    if (typeof body.detail === 'string') return body.detail;
    const issues = issuesOf(body);
    if (issues.length) return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  }
  return `Request failed (${status})`;
}

export interface Product {
  slug: string;
  name: string;
  description: string;
  role: string;
}

export interface Environment {
  slug: string;
  name: string;
  isProduction: boolean;
}

export interface ActivationInfo {
  env: string;
  active: boolean;
  version: number | null;
}

export interface WorkflowSummary {
  id: number;
  tag: string;
  name: string;
  description: string;
  source: 'canvas' | 'code';
  latestVersion: number | null;
  hasDraft: boolean;
  activations: ActivationInfo[];
  updatedAt: string;
}

export interface WorkflowDetail extends WorkflowSummary {
  draft: WorkflowSpec | null;
}

export interface VersionSummary {
  number: number;
  author: string;
  note: string;
  publishedAt: string;
  checksum: string;
}

export interface VersionDetail extends VersionSummary {
  spec: WorkflowSpec;
}

export interface ValidateResult {
  ok: boolean;
  issues: Issue[];
  levels: string[][] | null;
}

function parseProduct(raw: unknown): Product | null {
  if (!isRecord(raw) || typeof raw.slug !== 'string') return null;
  return { slug: raw.slug, name: asText(raw.name, raw.slug), description: asText(raw.description), role: asText(raw.role) };
}

function versionNumber(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (isRecord(value) && typeof value.number === 'number') return value.number;
  return null;
}

function parseActivations(raw: unknown): ActivationInfo[] {
  if (!Array.isArray(raw)) return [];
  const out: ActivationInfo[] = [];
  for (const a of raw) {
    if (!isRecord(a)) continue;
    const env = isRecord(a.env) ? asText(a.env.slug) : asText(a.env ?? a.environment);
    out.push({ env, active: a.active === true, version: versionNumber(a.version) });
  }
  return out;
}

function parseWorkflow(raw: unknown): WorkflowDetail | null {
  if (!isRecord(raw) || typeof raw.tag !== 'string') return null;
  let draft: WorkflowSpec | null = null;
  const draftRaw = isRecord(raw.draft) && isRecord(raw.draft.spec) ? raw.draft.spec : raw.draft;
  if (isRecord(draftRaw)) draft = parseSpec(draftRaw);
  return {
    id: typeof raw.id === 'number' ? raw.id : 0,
    tag: raw.tag,
    name: asText(raw.name, raw.tag),
    description: asText(raw.description),
    source: raw.source === 'code' ? 'code' : 'canvas',
    latestVersion: versionNumber(raw.latest_version),
    hasDraft: draft !== null || raw.has_draft === true,
    activations: parseActivations(raw.activations),
    updatedAt: asText(raw.updated_at),
    draft,
  };
}

function parseVersion(raw: unknown): VersionDetail | null {
  if (!isRecord(raw) || typeof raw.number !== 'number') return null;
  const author = isRecord(raw.author) ? asText(raw.author.username) : asText(raw.author);
  return {
    number: raw.number,
    author,
    note: asText(raw.note),
    publishedAt: asText(raw.published_at ?? raw.created_at),
    checksum: asText(raw.checksum),
    spec: parseSpec(isRecord(raw.spec) ? raw.spec : {}),
  };
}

export class Api {
  constructor(
    readonly base: string,
    private readonly csrfToken: string,
  ) {}

  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-CSRFToken'] = this.csrfToken;
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text.slice(0, 200) };
      }
    }
    if (!response.ok) {
      throw new ApiError(messageOf(data, response.status), response.status, isRecord(data) ? asText(data.code, 'error') : 'error', issuesOf(data));
    }
    return data;
  }

  private wf(product: string, tag: string): string {
    return `/products/${encodeURIComponent(product)}/workflows/${encodeURIComponent(tag)}`;
  }

  async products(): Promise<Product[]> {
    return listOf(await this.request('GET', '/products/'))
      .map(parseProduct)
      .filter((p): p is Product => p !== null);
  }

  async environments(product: string): Promise<Environment[]> {
    const body = await this.request('GET', `/products/${encodeURIComponent(product)}/environments/`);
    return listOf(body)
      .filter(isRecord)
      .map((e) => ({ slug: asText(e.slug), name: asText(e.name, asText(e.slug)), isProduction: e.is_production === true }));
  }

  async components(product: string): Promise<unknown> {
    return this.request('GET', `/products/${encodeURIComponent(product)}/components/`);
  }

  async workflows(product: string): Promise<WorkflowSummary[]> {
    const body = await this.request('GET', `/products/${encodeURIComponent(product)}/workflows/`);
    return listOf(body)
      .map(parseWorkflow)
      .filter((w): w is WorkflowDetail => w !== null);
  }

  async workflow(product: string, tag: string): Promise<WorkflowDetail> {
    const w = parseWorkflow(await this.request('GET', `${this.wf(product, tag)}/`));
    if (!w) throw new ApiError('Unexpected workflow response', 500, 'bad_response', []);
    return w;
  }

  async createWorkflow(product: string, data: { tag: string; name: string; description?: string }): Promise<WorkflowDetail> {
    const w = parseWorkflow(await this.request('POST', `/products/${encodeURIComponent(product)}/workflows/`, data));
    if (!w) throw new ApiError('Unexpected workflow response', 500, 'bad_response', []);
    return w;
  }

  async draft(product: string, tag: string): Promise<WorkflowSpec | null> {
    try {
      const body = await this.request('GET', `${this.wf(product, tag)}/draft`);
      if (isRecord(body) && isRecord(body.spec)) return parseSpec(body.spec);
      return null;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  async saveDraft(product: string, tag: string, spec: WorkflowSpec): Promise<void> {
    await this.request('PUT', `${this.wf(product, tag)}/draft`, { spec });
  }

  async validate(product: string, tag: string, spec: WorkflowSpec, signal?: AbortSignal): Promise<ValidateResult> {
    try {
      const body = await this.request('POST', `${this.wf(product, tag)}/validate`, { spec }, signal);
      let levels: string[][] | null = null;
      if (isRecord(body) && Array.isArray(body.levels)) {
        levels = body.levels.map((l) => (Array.isArray(l) ? l.map((t) => asText(t)) : []));
      }
      return { ok: true, issues: [], levels };
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) {
        const issues = e.issues.length ? e.issues : [{ path: '', message: e.message }];
        return { ok: false, issues, levels: null };
      }
      throw e;
    }
  }

  async publish(product: string, tag: string, spec: WorkflowSpec, note: string): Promise<VersionSummary & { unchanged: boolean }> {
    const body = await this.request('POST', `${this.wf(product, tag)}/publish`, { spec, note });
    const v = parseVersion(body);
    if (!v) throw new ApiError('Unexpected publish response', 500, 'bad_response', []);
    return { ...v, unchanged: isRecord(body) && body.unchanged === true };
  }

  async versions(product: string, tag: string): Promise<VersionSummary[]> {
    const body = await this.request('GET', `${this.wf(product, tag)}/versions/`);
    return listOf(body)
      .map(parseVersion)
      .filter((v): v is VersionDetail => v !== null)
      .sort((a, b) => b.number - a.number);
  }

  async version(product: string, tag: string, number: number): Promise<VersionDetail> {
    const v = parseVersion(await this.request('GET', `${this.wf(product, tag)}/versions/${number}/`));
    if (!v) throw new ApiError('Unexpected version response', 500, 'bad_response', []);
    return v;
  }
}
