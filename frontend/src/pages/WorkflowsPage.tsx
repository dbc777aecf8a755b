import { useEffect, useMemo, useState, type FormEvent } from 'react';

import { AdminNav } from '../admin';
import { ApiError, type Environment, type WorkflowSummary } from '../api';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { Icon } from '../components/Icon';
import { Empty, TopBar } from '../components/Shell';
import { filterWorkflows, slugify, type BrowseFilter } from '../lib/browse';

function NewWorkflow({ product, onCancel }: { product: string; onCancel(): void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [tag, setTag] = useState('');
  const [tagEdited, setTagEdited] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const w = await api.createWorkflow(product, { name, tag: tag || slugify(name) });
      window.location.href = `/p/${encodeURIComponent(product)}/w/${encodeURIComponent(w.tag)}/`;
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <form className="new-workflow" onSubmit={submit} data-testid="new-workflow-form">
      <label className="field">
        <span className="field-label">Name</span>
        <input
          autoFocus
          required
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            if (!tagEdited) setTag(slugify(e.target.value));
          }}
          data-testid="new-workflow-name"
        />
      </label>
      <label className="field">
        <span className="field-label">Tag</span>
        <input
          required
          pattern="[a-z0-9_\-]+"
          value={tag}
          onChange={(e) => {
            setTag(e.target.value);
            setTagEdited(true);
          }}
          data-testid="new-workflow-tag"
        />
      </label>
      <div className="form-actions">
        <button type="submit" className="button primary" disabled={busy} data-testid="new-workflow-create">
          Create and open
        </button>
        <button type="button" className="button ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error ? <div className="alert">{error}</div> : null}
    </form>
  );
}

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

export function WorkflowsPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const [workflows, setWorkflows] = useState<WorkflowSummary[] | null>(null);
  const [envs, setEnvs] = useState<Environment[]>([]);
  const [error, setError] = useState('');
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState<BrowseFilter>(() => {
    const params = new URLSearchParams(window.location.search);
    return { query: params.get('q') ?? '', source: (params.get('source') as BrowseFilter['source']) ?? 'all', activation: params.get('active') ?? 'all' };
  });

  useEffect(() => {
    api.workflows(product.slug).then(setWorkflows, (e: Error) => setError(e.message));
    api.environments(product.slug).then(setEnvs, () => setEnvs([]));
  }, [api, product.slug]);

  // Keep the filter in the address so it survives a reload and can be shared.
  useEffect(() => {
    const params = new URLSearchParams();
    if (filter.query) params.set('q', filter.query);
    if (filter.source !== 'all') params.set('source', filter.source);
    if (filter.activation !== 'all') params.set('active', filter.activation);
    const qs = params.toString();
    window.history.replaceState(null, '', qs ? `?${qs}` : window.location.pathname);
  }, [filter]);

  const shown = useMemo(() => (workflows ? filterWorkflows(workflows, filter) : []), [workflows, filter]);
  const envSlugs = envs.length ? envs.map((e) => e.slug) : [...new Set((workflows ?? []).flatMap((w) => w.activations.map((a) => a.env)))];
  const canCreate = roleAtLeast(product.role, 'designer');

  return (
    <div className="page">
      <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name }]} />
      <main className="content">
        <AdminNav current="workflows" product={product.slug} role={product.role} />
        <div className="content-head row">
          <div>
            <h1>Workflows</h1>
            <p className="muted">{product.name}</p>
          </div>
          {canCreate && !creating ? (
            <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="new-workflow">
              <Icon name="plus" size={14} /> New workflow
            </button>
          ) : null}
        </div>
        {creating ? <NewWorkflow product={product.slug} onCancel={() => setCreating(false)} /> : null}
        <div className="filters">
          <div className="search-box">
            <Icon name="search" size={14} />
            <input placeholder="Search by name or tag" value={filter.query} onChange={(e) => setFilter({ ...filter, query: e.target.value })} data-testid="workflow-search" aria-label="Search workflows" />
          </div>
          <div className="segmented" role="group" aria-label="Source">
            {(['all', 'canvas', 'code'] as const).map((s) => (
              <button key={s} type="button" className={filter.source === s ? 'on' : ''} onClick={() => setFilter({ ...filter, source: s })} data-testid={`source-${s}`}>
                {s === 'all' ? 'All sources' : s === 'canvas' ? 'Canvas' : 'Code'}
              </button>
            ))}
          </div>
          <select value={filter.activation} onChange={(e) => setFilter({ ...filter, activation: e.target.value })} data-testid="activation-filter" aria-label="Activation">
            <option value="all">Any activation</option>
            <option value="active">Active somewhere</option>
            <option value="inactive">Inactive everywhere</option>
            {envSlugs.map((e) => (
              <option key={e} value={`env:${e}`}>
                Active in {e}
              </option>
            ))}
          </select>
        </div>
        {error ? <div className="alert">{error}</div> : null}
        {workflows === null && !error ? <div className="muted">Loading…</div> : null}
        {workflows && workflows.length === 0 ? (
          <Empty title="No workflows yet">{canCreate ? <p>Create one and draw it on the canvas.</p> : null}</Empty>
        ) : null}
        {workflows && workflows.length > 0 ? (
          <table className="table" data-testid="workflow-table">
            <thead>
              <tr>
                <th>Workflow</th>
                <th>Source</th>
                <th>Version</th>
                <th>Environments</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((w) => (
                <tr key={w.tag} data-testid={`workflow-${w.tag}`}>
                  <td>
                    <a className="row-link" href={`/p/${encodeURIComponent(product.slug)}/w/${encodeURIComponent(w.tag)}/`}>
                      <strong>{w.name}</strong>
                      <span className="muted mono">{w.tag}</span>
                    </a>
                  </td>
                  <td>
                    <span className={`source-badge ${w.source}`}>{w.source}</span>
                  </td>
                  <td>
                    {w.latestVersion ? `v${w.latestVersion}` : <span className="muted">unpublished</span>}
                    {w.hasDraft ? <span className="draft-dot" title="Has unpublished changes" /> : null}
                    {w.latestVersion ? (
                      <a className="link small" href={`/p/${encodeURIComponent(product.slug)}/w/${encodeURIComponent(w.tag)}/runs/`} data-testid={`runs-${w.tag}`}>
                        {' '}
                        runs
                      </a>
                    ) : null}
                  </td>
                  <td>
                    <span className="env-pills">
                      {envSlugs.map((env) => {
                        const a = w.activations.find((x) => x.env === env);
                        return (
                          <span key={env} className={`env-pill${a?.active ? ' on' : ''}`} title={a?.active ? `active in ${env}${a.version ? ` (v${a.version})` : ''}` : `inactive in ${env}`}>
                            {env}
                          </span>
                        );
                      })}
                    </span>
                  </td>
                  <td className="muted">{when(w.updatedAt)}</td>
                </tr>
              ))}
              {shown.length === 0 ? (
                <tr>
                  <td colSpan={5} className="muted center">
                    No workflow matches these filters.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        ) : null}
      </main>
    </div>
  );
}
