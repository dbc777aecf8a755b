// A workflow's runs in one environment: filters (status, time, input search) over a list
// kept live by the workflow socket (a runs snapshot, then run-level journal entries), and
// the start form (environment + input form from the workflow's input schema).

import { useEffect, useMemo, useRef, useState } from 'react';

import type { Environment } from '../api';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { TopBar } from '../components/Shell';
import type { WorkflowSpec } from '../lib/spec';
import { durationMs, formatDuration, parseEntry } from './model';
import { RunsApi, parseRunSummary, type RunSummary } from './runsApi';
import './monitor.css';
import { SchemaForm } from './SchemaForm';
import { LiveSocket, wsUrl, type LiveState } from './socket';

const RUN_END: Record<string, string> = {
  run_completed: 'completed',
  run_failed: 'failed',
  run_rolled_back: 'rolled_back',
  run_cancelled: 'cancelled',
  run_waiting: 'waiting',
  run_started: 'running',
};

const FINISHED = new Set(['completed', 'failed', 'rolled_back', 'cancelled']);

const SINCE: Record<string, number> = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, all: Infinity };

/** Apply a run-level journal entry to the list (a new run appears at the top). */
export function applyRunEntry(list: RunSummary[], raw: Record<string, unknown>, env: string): RunSummary[] {
  const entry = parseEntry(raw);
  if (!entry) return list;
  const status = RUN_END[entry.kind];
  if (!status) return list;
  const i = list.findIndex((r) => r.id === entry.run);
  if (i >= 0) {
    const r = list[i]!;
    if (entry.seq <= r.lastSeq && entry.kind !== 'run_started') return list;
    const next = [...list];
    next[i] = { ...r, status, lastSeq: Math.max(r.lastSeq, entry.seq), finishedAt: FINISHED.has(status) ? entry.at : r.finishedAt, startedAt: r.startedAt || (entry.kind === 'run_started' ? entry.at : '') };
    return next;
  }
  const data = entry.data && typeof entry.data === 'object' && !Array.isArray(entry.data) ? entry.data : {};
  const fresh: RunSummary = {
    id: entry.run,
    status,
    environment: env,
    version: typeof data.version === 'number' ? data.version : null,
    input: data.input ?? null,
    createdAt: entry.at,
    startedAt: entry.at,
    finishedAt: '',
    lastSeq: entry.seq,
    origin: typeof data.origin === 'number' ? data.origin : null,
    originKind: typeof data.origin_kind === 'string' ? data.origin_kind : '',
  };
  return [fresh, ...list].sort((a, b) => b.id - a.id);
}

/** Lineage both ways in a row: the run it was made from, and the listed runs made from it. */
function RunLineage({ run, list, product }: { run: RunSummary; list: RunSummary[]; product: string }) {
  const derived = list.filter((x) => x.origin === run.id);
  if (!run.origin && !run.originKind && !derived.length) return null;
  return (
    <span className="muted small">
      {run.origin ? (
        <>
          {' '}
          {run.originKind || 'derived'} of{' '}
          <a className="link" href={`/p/${product}/runs/${run.origin}/`} data-testid={`run-origin-${run.id}`}>
            #{run.origin}
          </a>
        </>
      ) : run.originKind ? (
        ` ${run.originKind}`
      ) : null}
      {derived.length ? ' → ' : null}
      {derived.map((d, i) => (
        <span key={d.id}>
          {i ? ', ' : ''}
          <a className="link" href={`/p/${product}/runs/${d.id}/`} data-testid={`run-derived-${run.id}-${d.id}`}>
            #{d.id}
          </a>
        </span>
      ))}
    </span>
  );
}

export function RunsPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const tag = boot.workflow!.tag;
  const runsApi = useMemo(() => new RunsApi(api), [api]);
  const canOperate = roleAtLeast(product.role, 'operator') || boot.user.isSuperuser;
  const isAdmin = roleAtLeast(product.role, 'admin') || boot.user.isSuperuser;

  const [envs, setEnvs] = useState<Environment[]>([]);
  const [env, setEnv] = useState(() => new URLSearchParams(window.location.search).get('env') ?? '');
  const [spec, setSpec] = useState<WorkflowSpec | null>(null);
  const [list, setList] = useState<RunSummary[]>([]);
  const [status, setStatus] = useState('');
  const [since, setSince] = useState('all');
  const [search, setSearch] = useState('');
  const [live, setLive] = useState<LiveState>('connecting');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [showStart, setShowStart] = useState(false);
  const envRef = useRef(env);
  envRef.current = env;

  useEffect(() => {
    api.environments(product.slug).then((e) => {
      setEnvs(e);
      setEnv((cur) => cur || e[0]?.slug || '');
    }, (e: unknown) => setError(String(e)));
    api
      .workflow(product.slug, tag)
      .then(async (w) => (w.latestVersion !== null ? (await api.version(product.slug, tag, w.latestVersion)).spec : w.draft))
      .then(setSpec, (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [api, product.slug, tag]);

  useEffect(() => {
    if (!env) return;
    setList([]);
    const socket = new LiveSocket(
      () => wsUrl(`/ws/workflows/${encodeURIComponent(product.slug)}/${encodeURIComponent(tag)}/?env=${encodeURIComponent(env)}&only=run&limit=200`),
      {
        message(msg) {
          if (msg.type === 'runs' && Array.isArray(msg.runs)) {
            setList(msg.runs.map(parseRunSummary).filter((r): r is RunSummary => r !== null));
          } else if (msg.type === 'entry') {
            setList((l) => applyRunEntry(l, msg, envRef.current));
          } else if (msg.type === 'run') {
            const r = parseRunSummary(msg.run);
            if (r) setList((l) => [r, ...l.filter((x) => x.id !== r.id)].sort((a, b) => b.id - a.id));
          }
        },
        state: (s) => setLive(s),
      },
    ).start();
    return () => socket.stop();
  }, [env, product.slug, tag]);

  const shown = useMemo(() => {
    const limit = SINCE[since] ?? Infinity;
    const now = Date.now();
    const needle = search.trim().toLowerCase();
    return list.filter(
      (r) =>
        (!status || r.status === status) &&
        (limit === Infinity || now - Date.parse(r.createdAt || r.startedAt) <= limit) &&
        (!needle || JSON.stringify(r.input ?? {}).toLowerCase().includes(needle) || String(r.id) === needle),
    );
  }, [list, status, since, search]);

  const start = async (input: Record<string, unknown>) => {
    setBusy(true);
    setError('');
    try {
      const id = await runsApi.start(product.slug, tag, env, input);
      window.location.href = `/p/${product.slug}/runs/${id}/`;
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <TopBar
        crumbs={[
          { label: 'Products', href: '/' },
          { label: product.name, href: `/p/${product.slug}/` },
          { label: tag, href: `/p/${product.slug}/w/${tag}/` },
          { label: 'Runs' },
        ]}
      >
        <span className={`mon-live mon-live-${live}`} data-testid="live-state">
          {live === 'live' ? '● live' : live}
        </span>
      </TopBar>
      <main className="content">
        <div className="content-head">
          <h1>Runs of {tag}</h1>
          {canOperate ? (
            <button className="button primary" data-testid="start-run" onClick={() => setShowStart(!showStart)}>
              Start a run…
            </button>
          ) : null}
        </div>
        {error ? (
          <div className="alert" role="alert" data-testid="runs-error">
            {error}
          </div>
        ) : null}
        {showStart ? (
          <section className="mon-panel" data-testid="start-panel">
            <label className="mon-field">
              <span>Environment</span>
              <select value={env} onChange={(e) => setEnv(e.target.value)} data-testid="start-env">
                {envs.map((e) => (
                  <option key={e.slug} value={e.slug}>
                    {e.name}
                    {e.isProduction ? ' (production)' : ''}
                  </option>
                ))}
              </select>
            </label>
            {envs.find((e) => e.slug === env)?.isProduction && !isAdmin ? (
              // The server would refuse it (the prd rule): say so instead of offering it.
              <p className="muted" data-testid="start-why">
                Starting runs in a production environment needs the admin role (you are {product.role}).
              </p>
            ) : spec ? (
              <SchemaForm schema={spec.input} submitLabel="Start" busy={busy} testId="start-form" onSubmit={(input) => void start(input)} />
            ) : (
              <p className="muted">Loading the input schema…</p>
            )}
          </section>
        ) : null}
        <div className="filters" data-testid="runs-filters">
          <select value={env} onChange={(e) => setEnv(e.target.value)} aria-label="Environment" data-testid="filter-env">
            {envs.map((e) => (
              <option key={e.slug} value={e.slug}>
                {e.name}
              </option>
            ))}
          </select>
          <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Status" data-testid="filter-status">
            <option value="">any status</option>
            {['pending', 'running', 'waiting', 'completed', 'failed', 'rolled_back', 'cancelled'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
          <select value={since} onChange={(e) => setSince(e.target.value)} aria-label="Since" data-testid="filter-since">
            <option value="1h">last hour</option>
            <option value="24h">last 24 h</option>
            <option value="7d">last 7 days</option>
            <option value="all">any time</option>
          </select>
          <input className="search-box" placeholder="Search input or run id" value={search} onChange={(e) => setSearch(e.target.value)} data-testid="filter-search" />
        </div>
        <table className="table" data-testid="runs-table">
          <thead>
            <tr>
              <th>run</th>
              <th>status</th>
              <th>version</th>
              <th>started</th>
              <th>duration</th>
              <th>input</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id} data-testid={`run-row-${r.id}`} data-status={r.status}>
                <td>
                  <a className="row-link" href={`/p/${product.slug}/runs/${r.id}/`}>
                    #{r.id}
                  </a>
                  <RunLineage run={r} list={list} product={product.slug} />
                </td>
                <td>
                  <span className={`badge run-${r.status}`}>{r.status}</span>
                </td>
                <td>{r.version ?? ''}</td>
                <td className="small">{r.startedAt || r.createdAt ? new Date(r.startedAt || r.createdAt).toLocaleString() : ''}</td>
                <td className="small">{formatDuration(durationMs(r.startedAt || null, r.finishedAt || null))}</td>
                <td className="mono small mon-input-cell">{JSON.stringify(r.input ?? {}).slice(0, 120)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {shown.length === 0 ? <p className="muted">No runs match.</p> : null}
      </main>
    </div>
  );
}
