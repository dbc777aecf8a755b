// Pure helpers of the admin pages (environments, activation matrix, members, audit):
// response parsers that check the shape they need, and small list/diff/query helpers.
// No DOM, no fetch: tested with vitest.

import { asNumber, asString, isRecord, listOf, type JsonRecord } from '../lib/json';

// --- environments -------------------------------------------------------------------------

export const RETENTION_KEYS = ['completed_days', 'failed_days', 'keep_last', 'audit_days'] as const;
export type RetentionKey = (typeof RETENTION_KEYS)[number];
export type Retention = Partial<Record<RetentionKey, number>>;

export interface Env {
  slug: string;
  name: string;
  order: number;
  isProduction: boolean;
  /** What this environment sets itself (missing keys: the product default). */
  retention: Retention;
  /** What applies: its own values, the product default for the rest. */
  retentionEffective: Retention;
}

function parseRetention(raw: unknown): Retention {
  const out: Retention = {};
  if (!isRecord(raw)) return out;
  for (const key of RETENTION_KEYS) {
    const value = asNumber(raw[key]);
    if (value !== null) out[key] = value;
  }
  return out;
}

export function parseEnv(raw: unknown): Env | null {
  if (!isRecord(raw) || typeof raw.slug !== 'string') return null;
  return {
    slug: raw.slug,
    name: asString(raw.name, raw.slug),
    order: asNumber(raw.order) ?? 0,
    isProduction: raw.is_production === true,
    retention: parseRetention(raw.retention),
    retentionEffective: parseRetention(raw.retention_effective),
  };
}

export function parseEnvs(raw: unknown): Env[] {
  return listOf(raw)
    .map(parseEnv)
    .filter((e): e is Env => e !== null);
}

/** The list with the item at ``index`` moved by ``delta`` places (clamped). */
export function moveItem<T>(items: readonly T[], index: number, delta: number): T[] {
  const out = [...items];
  const target = Math.max(0, Math.min(out.length - 1, index + delta));
  if (index < 0 || index >= out.length || target === index) return out;
  const [item] = out.splice(index, 1);
  out.splice(target, 0, item as T);
  return out;
}

// --- the activation matrix ----------------------------------------------------------------

export interface Cell {
  active: boolean;
  liveVersion: number | null;
  pinned: boolean;
  /** 'user', 'code', or '' when nobody decided yet. */
  managedBy: string;
}

export interface MatrixRow {
  tag: string;
  name: string;
  source: string;
  latestVersion: number | null;
  cells: Record<string, Cell>;
}

export interface Matrix {
  environments: Env[];
  workflows: MatrixRow[];
}

export function parseCell(raw: unknown): Cell {
  const c = isRecord(raw) ? raw : {};
  return { active: c.active === true, liveVersion: asNumber(c.live_version), pinned: c.pinned === true, managedBy: asString(c.managed_by) };
}

export function parseCells(raw: unknown): Record<string, Cell> {
  const out: Record<string, Cell> = {};
  if (isRecord(raw)) for (const [env, cell] of Object.entries(raw)) out[env] = parseCell(cell);
  return out;
}

export function parseMatrix(raw: unknown): Matrix {
  const m = isRecord(raw) ? raw : {};
  const workflows: MatrixRow[] = [];
  for (const w of listOf(m.workflows)) {
    if (!isRecord(w) || typeof w.tag !== 'string') continue;
    workflows.push({ tag: w.tag, name: asString(w.name, w.tag), source: asString(w.source, 'canvas'), latestVersion: asNumber(w.latest_version), cells: parseCells(w.cells) });
  }
  return { environments: parseEnvs(m.environments), workflows };
}

/** The environment after ``slug`` in order (where a promotion goes next), or null. */
export function nextEnv(envs: readonly Env[], slug: string): Env | null {
  const i = envs.findIndex((e) => e.slug === slug);
  return i >= 0 && i + 1 < envs.length ? (envs[i + 1] ?? null) : null;
}

/** Environments a version live in ``from`` can be promoted to: every later one. */
export function promotionTargets(envs: readonly Env[], from: string): Env[] {
  const i = envs.findIndex((e) => e.slug === from);
  return i < 0 ? [] : envs.slice(i + 1);
}

/** Environments strictly between ``from`` and ``to`` (what ``through`` also updates). */
export function between(envs: readonly Env[], from: string, to: string): Env[] {
  const i = envs.findIndex((e) => e.slug === from);
  const j = envs.findIndex((e) => e.slug === to);
  return i >= 0 && j > i ? envs.slice(i + 1, j) : [];
}

export function cellLabel(cell: Cell | undefined): string {
  if (!cell) return 'inactive';
  const version = cell.liveVersion ? `v${cell.liveVersion}` : 'no version';
  return `${cell.active ? 'active' : 'inactive'} · ${version}${cell.pinned ? ' (pinned)' : ''}`;
}

// --- differences (promotion preview, environment diff) ------------------------------------

export interface Change {
  path: string;
  change: 'added' | 'removed' | 'changed';
  before: unknown;
  after: unknown;
}

export interface SecretDiff {
  name: string;
  inA: boolean;
  inB: boolean;
  differs: boolean;
  unreadable: boolean;
}

export interface ConfigDiff {
  component: string;
  kind: string;
  configuredInA: boolean;
  configuredInB: boolean;
  config: Change[];
  variables: Change[];
  constants: Change[];
  secrets: SecretDiff[];
}

export interface PreviewTarget {
  env: string;
  isProduction: boolean;
  before: Cell;
  after: Cell;
  specDiff: { fromVersion: number | null; toVersion: number | null; changes: Change[] };
  configDiff: ConfigDiff[];
  unconfigured: string[];
}

export interface Preview {
  workflow: string;
  version: number | null;
  fromEnv: string;
  toEnv: string;
  componentsUsed: string[];
  environments: PreviewTarget[];
  cells: Record<string, Cell> | null;
}

const CHANGE_KINDS = new Set(['added', 'removed', 'changed']);

export function parseChanges(raw: unknown): Change[] {
  const out: Change[] = [];
  for (const c of listOf(raw)) {
    if (!isRecord(c) || typeof c.path !== 'string') continue;
    const change = CHANGE_KINDS.has(asString(c.change)) ? (c.change as Change['change']) : 'changed';
    out.push({ path: c.path, change, before: c.before ?? null, after: c.after ?? null });
  }
  return out;
}

function strings(raw: unknown): string[] {
  return listOf(raw).filter((s): s is string => typeof s === 'string');
}

export function parseConfigDiffs(raw: unknown): ConfigDiff[] {
  const out: ConfigDiff[] = [];
  for (const c of listOf(raw)) {
    if (!isRecord(c) || typeof c.component !== 'string') continue;
    out.push({
      component: c.component,
      kind: asString(c.kind),
      configuredInA: c.configured_in_a === true,
      configuredInB: c.configured_in_b === true,
      config: parseChanges(c.config),
      variables: parseChanges(c.variables),
      constants: parseChanges(c.constants),
      secrets: listOf(c.secrets)
        .filter(isRecord)
        .map((s) => ({ name: asString(s.name), inA: s.in_a === true, inB: s.in_b === true, differs: s.differs === true, unreadable: s.unreadable === true })),
    });
  }
  return out;
}

export function parsePreview(raw: unknown): Preview {
  const p = isRecord(raw) ? raw : {};
  const environments: PreviewTarget[] = [];
  for (const t of listOf(p.environments)) {
    if (!isRecord(t)) continue;
    const spec = isRecord(t.spec_diff) ? t.spec_diff : {};
    const before = isRecord(t.before) ? t.before : {};
    const after = isRecord(t.after) ? t.after : {};
    environments.push({
      env: asString(t.env),
      isProduction: t.is_production === true,
      before: parseCell({ ...before, live_version: before.version }),
      after: parseCell({ ...after, live_version: after.version }),
      specDiff: { fromVersion: asNumber(spec.from_version), toVersion: asNumber(spec.to_version), changes: parseChanges(spec.changes) },
      configDiff: parseConfigDiffs(t.config_diff),
      unconfigured: strings(t.unconfigured),
    });
  }
  return {
    workflow: asString(p.workflow),
    version: asNumber(p.version),
    fromEnv: asString(p.from_env),
    toEnv: asString(p.to_env),
    componentsUsed: strings(p.components_used),
    environments,
    cells: isRecord(p.cells) ? parseCells(p.cells) : null,
  };
}

export interface EnvDiff {
  a: string;
  b: string;
  components: ConfigDiff[];
  workflows: { workflow: string; a: { active: boolean; version: number | null }; b: { active: boolean; version: number | null } }[];
}

export function parseEnvDiff(raw: unknown): EnvDiff {
  const d = isRecord(raw) ? raw : {};
  const side = (v: unknown) => (isRecord(v) ? { active: v.active === true, version: asNumber(v.version) } : { active: false, version: null });
  return {
    a: asString(d.a),
    b: asString(d.b),
    components: parseConfigDiffs(d.components),
    workflows: listOf(d.workflows)
      .filter(isRecord)
      .map((w) => ({ workflow: asString(w.workflow), a: side(w.a), b: side(w.b) })),
  };
}

/** A JSON value in one short line, for a diff cell. */
export function short(value: unknown, max = 80): string {
  if (value === null || value === undefined) return '—';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function secretState(s: SecretDiff, a: string, b: string): string {
  if (s.unreadable) return 'stored secrets cannot be read (key changed?)';
  if (s.inA && !s.inB) return `only in ${a}`;
  if (!s.inA && s.inB) return `only in ${b}`;
  return 'set in both, values differ';
}

// --- component configuration --------------------------------------------------------------

export interface ComponentConfig {
  component: string;
  kind: string;
  environment: string;
  config: JsonRecord;
  variables: JsonRecord;
  constants: JsonRecord;
  /** Names only: values never reach the browser. */
  secretNames: string[];
  secretsUnreadable: boolean;
  updatedAt: string | null;
}

export function parseComponentConfig(raw: unknown): ComponentConfig {
  const c = isRecord(raw) ? raw : {};
  return {
    component: asString(c.component),
    kind: asString(c.kind),
    environment: asString(c.environment),
    config: isRecord(c.config) ? c.config : {},
    variables: isRecord(c.variables) ? c.variables : {},
    constants: isRecord(c.constants) ? c.constants : {},
    secretNames: isRecord(c.secrets) ? Object.keys(c.secrets).sort() : [],
    secretsUnreadable: c.secrets_unreadable === true,
    updatedAt: typeof c.updated_at === 'string' ? c.updated_at : null,
  };
}

export type Parsed = { ok: true; value: JsonRecord } | { ok: false; error: string };

/** A textarea's text as a JSON object (empty text = {}). */
export function parseJsonObject(text: string): Parsed {
  if (!text.trim()) return { ok: true, value: {} };
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? { ok: true, value } : { ok: false, error: 'must be a JSON object: { "key": value }' };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : 'not JSON' };
  }
}

export interface SecretEdit {
  name: string;
  /** A new value; '' keeps the stored one. */
  value: string;
  remove: boolean;
}

/** The ``secrets`` of a PUT: only what changes (a new value, or null to delete). Secrets
 * are write-only, so an untouched row sends nothing. */
export function secretsPatch(edits: readonly SecretEdit[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const e of edits) {
    const name = e.name.trim();
    if (!name) continue;
    if (e.remove) out[name] = null;
    else if (e.value !== '') out[name] = e.value;
  }
  return out;
}

// --- members ------------------------------------------------------------------------------

export const ROLES = ['viewer', 'operator', 'designer', 'admin'] as const;
export type RoleName = (typeof ROLES)[number];

export interface Member {
  username: string;
  role: RoleName;
  since: string;
}

export function parseMembers(raw: unknown): Member[] {
  return listOf(raw)
    .filter(isRecord)
    .filter((m) => typeof m.username === 'string')
    .map((m) => ({
      username: asString(m.username),
      role: (ROLES as readonly string[]).includes(asString(m.role)) ? (m.role as RoleName) : 'viewer',
      since: asString(m.created_at),
    }));
}

export const ROLE_HELP: Record<RoleName, string> = {
  viewer: 'reads workflows, runs and settings',
  operator: 'starts, signals, cancels and replays runs (not in production)',
  designer: 'edits and publishes drafts',
  admin: 'activation, promotion, environments, secrets, members; runs in production',
};

// --- audit --------------------------------------------------------------------------------

export interface AuditFilter {
  actor: string;
  action: string;
  since: string;
  until: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string | null;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

export interface AuditPage {
  count: number;
  entries: AuditEntry[];
}

/** The audit endpoint's query string for a filter and a page. */
export function auditQuery(filter: AuditFilter, offset = 0, limit = 50): string {
  const params = new URLSearchParams();
  for (const key of ['actor', 'action', 'since', 'until'] as const) {
    const value = filter[key].trim();
    if (value) params.set(key, value);
  }
  params.set('limit', String(limit));
  if (offset) params.set('offset', String(offset));
  return params.toString();
}

export function parseAuditPage(raw: unknown): AuditPage {
  const r = isRecord(raw) ? raw : {};
  const entries: AuditEntry[] = [];
  for (const e of listOf(r.results)) {
    if (!isRecord(e) || typeof e.id !== 'number') continue;
    entries.push({
      id: e.id,
      at: asString(e.at),
      actor: typeof e.actor === 'string' ? e.actor : null,
      action: asString(e.action),
      target: asString(e.target),
      before: e.before ?? null,
      after: e.after ?? null,
    });
  }
  return { count: asNumber(r.count) ?? entries.length, entries };
}

/** Before → after of an audit entry as key-level changes (one level deep). */
export function auditChanges(before: unknown, after: unknown): { key: string; before: unknown; after: unknown }[] {
  if (!isRecord(before) && !isRecord(after)) {
    return before === after ? [] : [{ key: '', before, after }];
  }
  const b = isRecord(before) ? before : {};
  const a = isRecord(after) ? after : {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
  return keys
    .filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map((k) => ({ key: k, before: k in b ? b[k] : null, after: k in a ? a[k] : null }));
}

export const AUDIT_ACTIONS = [
  'workflow.publish',
  'workflow.promote',
  'activation.set',
  'component.config',
  'environment',
  'member',
  'run',
] as const;
