// Every run of a product (/p/<product>/runs/): filters kept in the URL, the charts, the
// step grid and the runs table, paged on the server (a cursor per page), refreshed live
// over the workflow sockets, and bulk actions on the checked runs or on every run matching.
// Each run links to its monitor (the monitor page itself lives in MonitorPage.tsx).

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import type { Environment, WorkflowSummary } from '../api';
import { AdminNav } from '../admin';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { TopBar } from '../components/Shell';
import { BulkPanel } from './BulkPanel';
import { formatDuration } from './model';
import './monitor.css';
import { EMPTY_FILTERS, ProductRunsApi, filterParams, filtersFromSearch, filtersToSearch, type RunFilters, type RunStats, type RunsPage } from './productRuns';
import { RunCharts } from './RunCharts';
import { RunGrid, monitorHref } from './RunGrid';
import { LiveSocket, wsUrl, type LiveState } from './socket';

const STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'rolled_back', 'cancelled'];
const EMPTY_PAGE: RunsPage = { runs: [], next: null, rows: [], cells: {} };

export function ProductRunsPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const client = useMemo(() => new ProductRunsApi(api, product.slug), [api, product.slug]);
  const canOperate = roleAtLeast(product.role, 'operator') || boot.user.isSuperuser;

  const [filters, setFilters] = useState<RunFilters>(() => filtersFromSearch(window.location.search));
  const [draft, setDraft] = useState<RunFilters>(filters);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<RunsPage>(EMPTY_PAGE);
  const [stats, setStats] = useState<RunStats | null>(null);
  const [workflows, setWorkflows] = useState<WorkflowSummary[]>([]);
  const [envs, setEnvs] = useState<Environment[]>([]);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState('');
  const [live, setLive] = useState<LiveState>('connecting');
  const [tick, setTick] = useState(0);
  const cursor = cursors[cursors.length - 1] ?? null;

  useEffect(() => {
    api.workflows(product.slug).then(setWorkflows, () => undefined);
    api.environments(product.slug).then(setEnvs, () => undefined);
  }, [api, product.slug]);

  const apply = useCallback((next: RunFilters) => {
    setFilters(next);
    setDraft(next);
    setCursors([null]);
    setSelected(new Set());
    setAllMatching(false);
    window.history.replaceState(null, '', `${window.location.pathname}${filtersToSearch(next)}`);
  }, []);

  useEffect(() => {
    let stale = false;
    setLoading(true);
    client.page(filters, cursor).then(
      (p) => {
        if (stale) return;
        setPage(p);
        setError('');
        setLoading(false);
        document.body.dataset.runsReady = '1';
      },
      (e: unknown) => {
        if (stale) return;
        setError(e instanceof Error ? e.message : String(e));
        setPage(EMPTY_PAGE);
        setLoading(false);
      },
    );
    return () => {
      stale = true;
    };
  }, [client, filters, cursor, tick]);

  useEffect(() => {
    let stale = false;
    client.stats(filters).then((s) => !stale && setStats(s), () => !stale && setStats(null));
    return () => {
      stale = true;
    };
  }, [client, filters, tick]);

  // Live: any journal entry of the product's workflows refreshes the first page (and the
  // charts), at most once a second; older pages stay as they are while being read.
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onFirstPage = cursor === null;
  const firstRef = useRef(onFirstPage);
  firstRef.current = onFirstPage;
  useEffect(() => {
    const tags = workflows.filter((w) => w.latestVersion !== null).map((w) => w.tag);
    const sockets = tags.map((tag) =>
      new LiveSocket(() => wsUrl(`/ws/workflows/${encodeURIComponent(product.slug)}/${encodeURIComponent(tag)}/?limit=1`), {
        message(msg) {
          if (msg.type !== 'entry' || !firstRef.current || pending.current) return;
          pending.current = setTimeout(() => {
            pending.current = null;
            setTick((t) => t + 1);
          }, 1000);
        },
        state: (s) => setLive(s),
      }).start(),
    );
    return () => {
      for (const s of sockets) s.stop();
      if (pending.current) clearTimeout(pending.current);
      pending.current = null;
    };
  }, [workflows, product.slug]);

  const toggle = (id: number) => {
    setAllMatching(false);
    setSelected((cur) => {
      const next = new Set(cur);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  };
  const allOnPage = page.runs.length > 0 && page.runs.every((r) => selected.has(r.id));
  const target = allMatching ? { filter: filterParams(filters) } : { runs: [...selected] };
  const targetLabel = allMatching ? 'Every run matching this filter' : `${selected.size} selected run${selected.size === 1 ? '' : 's'}`;
  const steps = useMemo(() => [...new Set(page.rows.map((r) => r.tag))], [page.rows]);
  const set = (patch: Partial<RunFilters>) => apply({ ...filters, ...patch });

  return (
    <div className="page">
      <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name, href: `/p/${product.slug}/` }, { label: 'Runs' }]}>
        <span className={`mon-live mon-live-${live}`} data-testid="live-state">
          {live === 'live' ? '● live' : live}
        </span>
      </TopBar>
      <main className="content runs-page">
        <AdminNav current="runs" product={product.slug} role={product.role} />
        <div className="content-head">
          <h1>Runs of {product.name}</h1>
        </div>
        <form
          className="filters runs-filters"
          data-testid="runs-filters"
          onSubmit={(e) => {
            e.preventDefault();
            apply(draft);
          }}
        >
          <select value={filters.workflow} onChange={(e) => set({ workflow: e.target.value })} aria-label="Workflow" data-testid="filter-workflow">
            <option value="">every workflow</option>
            {workflows.map((w) => (
              <option key={w.tag} value={w.tag}>
                {w.tag}
              </option>
            ))}
          </select>
          <select value={filters.env} onChange={(e) => set({ env: e.target.value })} aria-label="Environment" data-testid="filter-env">
            <option value="">every environment</option>
            {envs.map((e) => (
              <option key={e.slug} value={e.slug}>
                {e.name}
              </option>
            ))}
          </select>
          <select value={filters.status} onChange={(e) => set({ status: e.target.value })} aria-label="Status" data-testid="filter-status">
            <option value="">any status</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
            <option value="failed,rolled_back">failed or rolled back</option>
          </select>
          <select value={filters.since} onChange={(e) => set({ since: e.target.value })} aria-label="Since" data-testid="filter-since">
            <option value="">any time</option>
            <option value="1h">last hour</option>
            <option value="24h">last 24 h</option>
            <option value="7d">last 7 days</option>
          </select>
          <input list="runs-steps" placeholder="failed at step" value={draft.failedStep} onChange={(e) => setDraft({ ...draft, failedStep: e.target.value })} aria-label="Failed at step" data-testid="filter-failed-step" />
          <datalist id="runs-steps">
            {steps.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
          <input className="mono runs-where" placeholder="input.customer.id = 42" value={draft.where} onChange={(e) => setDraft({ ...draft, where: e.target.value })} aria-label="JSON filter" data-testid="filter-where" />
          <input className="runs-id" placeholder="run #" value={draft.run} onChange={(e) => setDraft({ ...draft, run: e.target.value })} aria-label="Run id" data-testid="filter-run" />
          <button type="submit" className="button" data-testid="filter-apply">
            Apply
          </button>
          {filtersToSearch(filters) ? (
            <button type="button" className="link small" onClick={() => apply(EMPTY_FILTERS)} data-testid="filter-clear">
              clear
            </button>
          ) : null}
        </form>
        {error ? (
          <div className="alert" role="alert" data-testid="runs-error">
            {error}
          </div>
        ) : null}
        {stats ? <RunCharts stats={stats} /> : null}
        <RunGrid product={product.slug} runs={page.runs} rows={page.rows} cells={page.cells} />
        {canOperate && (selected.size > 0 || allMatching) ? (
          <BulkPanel client={client} target={target} label={targetLabel} onDone={() => setTick((t) => t + 1)} />
        ) : null}
        {canOperate && page.runs.length > 0 ? (
          <p className="small">
            <button type="button" className="link small" onClick={() => { setAllMatching(true); setSelected(new Set()); }} data-testid="select-all-matching">
              Select every run matching this filter
            </button>
            {allMatching ? <span className="muted"> (selected)</span> : null}
          </p>
        ) : null}
        <table className="table" data-testid="runs-table" data-loading={loading ? 'true' : 'false'}>
          <thead>
            <tr>
              {canOperate ? (
                <th>
                  <input type="checkbox" checked={allOnPage} aria-label="Select the page" data-testid="select-page"
                    onChange={() => { setAllMatching(false); setSelected(allOnPage ? new Set() : new Set(page.runs.map((r) => r.id))); }} />
                </th>
              ) : null}
              <th>run</th>
              <th>workflow</th>
              <th>env</th>
              <th>version</th>
              <th>status</th>
              <th>failed at</th>
              <th>created</th>
              <th>duration</th>
              <th>input</th>
            </tr>
          </thead>
          <tbody>
            {page.runs.map((r) => (
              <tr key={r.id} data-testid={`run-row-${r.id}`} data-status={r.status}>
                {canOperate ? (
                  <td>
                    <input type="checkbox" checked={allMatching || selected.has(r.id)} onChange={() => toggle(r.id)} aria-label={`Select run ${r.id}`} data-testid={`select-${r.id}`} />
                  </td>
                ) : null}
                <td>
                  <a className="row-link" href={monitorHref(product.slug, r.id)}>
                    #{r.id}
                  </a>
                  {r.origin ? (
                    <a className="muted small" href={monitorHref(product.slug, r.origin)} title={`${r.originKind} of #${r.origin}`}>
                      {' '}
                      {r.originKind} of #{r.origin}
                    </a>
                  ) : null}
                </td>
                <td>{r.workflow}</td>
                <td>{r.environment}</td>
                <td>{r.version ?? ''}</td>
                <td>
                  <span className={`badge run-${r.status}`}>{r.status}</span>
                </td>
                <td className="mono small">{r.failedStep}</td>
                <td className="small">{r.createdAt ? new Date(r.createdAt).toLocaleString() : ''}</td>
                <td className="small">{formatDuration(r.durationMs)}</td>
                <td className="mono small mon-input-cell">{JSON.stringify(r.input ?? {}).slice(0, 120)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {page.runs.length === 0 && !loading ? <p className="muted">No runs match.</p> : null}
        <div className="runs-pager">
          <button type="button" className="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))} data-testid="page-newer">
            ← newer
          </button>
          <button type="button" className="button" disabled={!page.next} onClick={() => page.next && setCursors((c) => [...c, page.next])} data-testid="page-older">
            older →
          </button>
        </div>
      </main>
    </div>
  );
}
