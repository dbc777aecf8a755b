// The audit log: who changed what and when (publishes, activation, promotions,
// configuration and secrets — masked —, members, operator actions), filtered by actor,
// action and date, newest first.
import { useCallback, useEffect, useState, type FormEvent } from 'react';

import { AdminFrame, errorText, useAdmin } from './AdminNav';
import { AUDIT_ACTIONS, auditChanges, short, type AuditEntry, type AuditFilter } from './lib';

function readFilter(): AuditFilter {
  const p = new URLSearchParams(window.location.search);
  return { actor: p.get('actor') ?? '', action: p.get('action') ?? '', since: p.get('since') ?? '', until: p.get('until') ?? '' };
}

function Changes({ entry }: { entry: AuditEntry }) {
  const rows = auditChanges(entry.before, entry.after);
  if (!rows.length) return <span className="muted">—</span>;
  return (
    <ul className="audit-changes">
      {rows.map((r) => (
        <li key={r.key}>
          {r.key ? <span className="mono muted">{r.key}: </span> : null}
          <span className="mono">{short(r.before, 60)}</span> → <span className="mono">{short(r.after, 60)}</span>
        </li>
      ))}
    </ul>
  );
}

export function AuditPage() {
  const { client, isAdmin } = useAdmin();
  const [filter, setFilter] = useState<AuditFilter>(readFilter);
  const [applied, setApplied] = useState<AuditFilter>(readFilter);
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [count, setCount] = useState(0);
  const [error, setError] = useState('');

  const load = useCallback(
    async (offset: number) => {
      setError('');
      try {
        const page = await client.audit(applied, offset);
        setCount(page.count);
        setEntries((prev) => (offset && prev ? [...prev, ...page.entries] : page.entries));
      } catch (e) {
        setError(errorText(e));
      }
    },
    [client, applied],
  );
  useEffect(() => {
    void load(0);
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(applied)) if (v) params.set(k, v);
    const qs = params.toString();
    window.history.replaceState(null, '', qs ? `?${qs}` : window.location.pathname);
  }, [load, applied]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setApplied({ ...filter });
  };

  return (
    <AdminFrame section="audit" title="Audit log" subtitle="Who changed what, when. Secret values are never recorded.">
      {!isAdmin ? <div className="alert">Only admins can read the audit log.</div> : null}
      <form className="filters" onSubmit={submit} data-testid="audit-filters">
        <input placeholder="actor (username)" value={filter.actor} onChange={(e) => setFilter({ ...filter, actor: e.target.value })} aria-label="Actor" data-testid="audit-actor" />
        <input list="audit-actions" placeholder="action (prefix)" value={filter.action} onChange={(e) => setFilter({ ...filter, action: e.target.value })} aria-label="Action" data-testid="audit-action" />
        <datalist id="audit-actions">
          {AUDIT_ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <label className="check">
          from <input type="date" value={filter.since} onChange={(e) => setFilter({ ...filter, since: e.target.value })} aria-label="Since" data-testid="audit-since" />
        </label>
        <label className="check">
          to <input type="date" value={filter.until} onChange={(e) => setFilter({ ...filter, until: e.target.value })} aria-label="Until" data-testid="audit-until" />
        </label>
        <button type="submit" className="button primary" data-testid="audit-apply">
          Filter
        </button>
        <button
          type="button"
          className="button ghost"
          onClick={() => {
            const empty = { actor: '', action: '', since: '', until: '' };
            setFilter(empty);
            setApplied(empty);
          }}
        >
          Clear
        </button>
      </form>
      {error ? <div className="alert">{error}</div> : null}
      {entries ? (
        <>
          <p className="muted small" data-testid="audit-count">
            {count} entr{count === 1 ? 'y' : 'ies'}
          </p>
          <table className="table" data-testid="audit-table">
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Before → after</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid="audit-row" data-action={e.action}>
                  <td className="muted nowrap">{new Date(e.at).toLocaleString()}</td>
                  <td>{e.actor ?? <span className="muted">system</span>}</td>
                  <td className="mono">{e.action}</td>
                  <td className="mono">{e.target}</td>
                  <td>
                    <Changes entry={e} />
                  </td>
                </tr>
              ))}
              {entries.length === 0 ? (
                <tr>
                  <td colSpan={5} className="muted center">
                    Nothing matches these filters.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
          {entries.length < count ? (
            <button type="button" className="button" onClick={() => load(entries.length)} data-testid="audit-more">
              Load more
            </button>
          ) : null}
        </>
      ) : null}
    </AdminFrame>
  );
}
