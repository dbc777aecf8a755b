// The activation matrix: workflows x environments. Each cell says whether the workflow is
// active there and which version is live; admins toggle it, pin a version, and promote the
// version live in one environment to a later one after previewing what changes.
import { useCallback, useEffect, useState } from 'react';

import { AdminFrame, errorText, useAdmin } from './AdminNav';
import type { AdminClient } from './client';
import { ChangeList, ConfigDiffList } from './Differences';
import { between, cellLabel, nextEnv, promotionTargets, type Cell, type Env, type Matrix, type MatrixRow, type Preview } from './lib';

interface PromoteTarget {
  row: MatrixRow;
  from: Env;
}

function PromoteDialog({ client, envs, target, onClose, onDone }: { client: AdminClient; envs: Env[]; target: PromoteTarget; onClose(): void; onDone(): void }) {
  const targets = promotionTargets(envs, target.from.slug);
  const [to, setTo] = useState(() => nextEnv(envs, target.from.slug)?.slug ?? '');
  const [through, setThrough] = useState(false);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const source = target.row.cells[target.from.slug];
  const version = source?.liveVersion ?? null;
  const skipped = between(envs, target.from.slug, to);

  useEffect(() => {
    if (!to) return;
    let stale = false;
    setPreview(null);
    setError('');
    client
      .promote({ workflow: target.row.tag, fromEnv: target.from.slug, toEnv: to, version, through }, true)
      .then(
        (p) => !stale && setPreview(p),
        (e: unknown) => !stale && setError(errorText(e)),
      );
    return () => {
      stale = true;
    };
  }, [client, target, to, through, version]);

  const promote = async () => {
    setBusy(true);
    setError('');
    try {
      await client.promote({ workflow: target.row.tag, fromEnv: target.from.slug, toEnv: to, version, through }, false);
      onDone();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  return (
    <div className="modal-backdrop" role="presentation" onClick={onClose}>
      <div className="modal wide" role="dialog" aria-label="Promote" data-testid="promote-dialog" onClick={(e) => e.stopPropagation()}>
        <header className="modal-head">
          <h2>
            Promote {target.row.name} v{version ?? '?'}
          </h2>
          <button type="button" className="button ghost" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </header>
        <div className="promote-form">
          <span>
            from <strong>{target.from.slug}</strong> to
          </span>
          <select value={to} onChange={(e) => setTo(e.target.value)} data-testid="promote-to" aria-label="Target environment">
            {targets.map((e) => (
              <option key={e.slug} value={e.slug}>
                {e.slug}
                {e.isProduction ? ' (production)' : ''}
              </option>
            ))}
          </select>
          {skipped.length ? (
            <label className="check">
              <input type="checkbox" checked={through} onChange={(e) => setThrough(e.target.checked)} data-testid="promote-through" />
              also make it live in {skipped.map((e) => e.slug).join(', ')}
            </label>
          ) : null}
        </div>
        <p className="muted small">
          The version becomes active and pinned in the target. New runs there use it at once; runs already going finish on the version they started with.
        </p>
        {error ? <div className="alert" data-testid="promote-error">{error}</div> : null}
        {!preview && !error ? <p className="muted">Computing what changes…</p> : null}
        {preview
          ? preview.environments.map((t) => (
              <section key={t.env} className="preview-env" data-testid={`preview-${t.env}`}>
                <h3>
                  {t.env} {t.isProduction ? <span className="prd-chip">production</span> : null}
                </h3>
                <p>
                  <span className="muted">now:</span> {cellLabel(t.before)} → <strong>{cellLabel(t.after)}</strong>
                </p>
                <h4>
                  Spec changes {t.specDiff.fromVersion ? `v${t.specDiff.fromVersion}` : '(nothing live)'} → v{t.specDiff.toVersion}
                </h4>
                <ChangeList changes={t.specDiff.changes} testId={`spec-diff-${t.env}`} empty="Same spec as the version live there." />
                <h4>
                  Configuration differences ({preview.fromEnv} → {t.env})
                </h4>
                {t.unconfigured.length ? (
                  <div className="alert warn" data-testid={`unconfigured-${t.env}`}>
                    Not configured in {t.env}: {t.unconfigured.join(', ')}. Steps using them will fail there.
                  </div>
                ) : null}
                <ConfigDiffList diffs={t.configDiff} a={preview.fromEnv} b={t.env} testId={`config-diff-${t.env}`} />
              </section>
            ))
          : null}
        <div className="form-actions">
          <button type="button" className="button primary" disabled={!preview || busy} onClick={promote} data-testid="promote-confirm">
            Promote v{version ?? '?'} to {to}
          </button>
          <button type="button" className="button ghost" onClick={onClose}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}

function CellView({ client, row, env, cell, isAdmin, versions, onChanged, onPromote, hasNext }: {
  client: AdminClient;
  row: MatrixRow;
  env: Env;
  cell: Cell;
  isAdmin: boolean;
  versions: number[];
  onChanged(): void;
  onPromote(): void;
  hasNext: boolean;
}) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const change = async (active: boolean, version: number | null) => {
    setBusy(true);
    setError('');
    try {
      await client.setActivation(row.tag, env.slug, active, version);
      onChanged();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const pinned = cell.pinned ? cell.liveVersion : null;
  const id = `cell-${row.tag}-${env.slug}`;
  return (
    <td className={`matrix-cell${cell.active ? ' on' : ''}`} data-testid={id} data-active={cell.active ? 'true' : 'false'} data-version={cell.liveVersion ?? ''}>
      <div className="cell-line">
        <span className={`status-pill ${cell.active ? 'on' : 'off'}`} data-testid={`${id}-state`}>
          {cell.active ? 'active' : 'inactive'}
        </span>
        <span className="mono" data-testid={`${id}-version`} title={cell.active ? 'live version' : 'the version that would be live'}>
          {cell.liveVersion ? `v${cell.liveVersion}` : '—'}
        </span>
        {cell.pinned ? <span className="muted small" title="This version is pinned">pinned</span> : null}
        {cell.managedBy === 'code' ? (
          <span className="code-chip" title="Set by the workflow's code (envs=…); a change here takes over">
            code
          </span>
        ) : null}
      </div>
      {isAdmin ? (
        <div className="cell-actions">
          <label className="check small">
            <input type="checkbox" checked={cell.active} disabled={busy || (!row.latestVersion && !cell.active)} onChange={(e) => change(e.target.checked, pinned)} data-testid={`${id}-toggle`} />
            active
          </label>
          <select className="small" value={pinned ?? ''} disabled={busy || !versions.length} onChange={(e) => change(cell.active, e.target.value ? Number(e.target.value) : null)} aria-label={`Version in ${env.slug}`} data-testid={`${id}-pin`}>
            <option value="">latest</option>
            {versions.map((v) => (
              <option key={v} value={v}>
                v{v}
              </option>
            ))}
          </select>
          {hasNext && cell.active && cell.liveVersion ? (
            <button type="button" className="button small" onClick={onPromote} data-testid={`${id}-promote`}>
              Promote →
            </button>
          ) : null}
        </div>
      ) : null}
      {error ? <div className="cell-error" data-testid={`${id}-error`}>{error}</div> : null}
    </td>
  );
}

export function MatrixPage() {
  const { client, isAdmin } = useAdmin();
  const [matrix, setMatrix] = useState<Matrix | null>(null);
  const [versions, setVersions] = useState<Record<string, number[]>>({});
  const [error, setError] = useState('');
  const [promoting, setPromoting] = useState<PromoteTarget | null>(null);

  const load = useCallback(async () => {
    try {
      const m = await client.matrix();
      setMatrix(m);
      if (isAdmin) {
        const entries = await Promise.all(m.workflows.map(async (w) => [w.tag, w.latestVersion ? await client.versions(w.tag) : []] as const));
        setVersions(Object.fromEntries(entries));
      }
    } catch (e) {
      setError(errorText(e));
    }
  }, [client, isAdmin]);

  useEffect(() => {
    void load();
  }, [load]);

  const envs = matrix?.environments ?? [];
  return (
    <AdminFrame section="activation" title="Activation" subtitle="Which version of each workflow is live in each environment.">
      <div className="note" data-testid="deactivate-note">
        Runs started in an environment use the version live there. <strong>Deactivating stops new runs</strong> in that environment; runs already going finish.
        {isAdmin ? null : ' Only admins change activation.'}
      </div>
      {error ? <div className="alert">{error}</div> : null}
      {!matrix && !error ? <p className="muted">Loading…</p> : null}
      {matrix && matrix.workflows.length === 0 ? <p className="muted">No workflows yet.</p> : null}
      {matrix && matrix.workflows.length > 0 ? (
        <table className="table matrix" data-testid="matrix">
          <thead>
            <tr>
              <th>Workflow</th>
              {envs.map((e) => (
                <th key={e.slug}>
                  {e.name} {e.isProduction ? <span className="prd-chip">production</span> : null}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {matrix.workflows.map((row) => (
              <tr key={row.tag} data-testid={`matrix-row-${row.tag}`}>
                <td>
                  <strong>{row.name}</strong>
                  <div className="muted mono small">
                    {row.tag} · {row.latestVersion ? `latest v${row.latestVersion}` : 'unpublished'}
                  </div>
                </td>
                {envs.map((e) => (
                  <CellView
                    key={e.slug}
                    client={client}
                    row={row}
                    env={e}
                    cell={row.cells[e.slug] ?? { active: false, liveVersion: null, pinned: false, managedBy: '' }}
                    isAdmin={isAdmin}
                    versions={versions[row.tag] ?? []}
                    onChanged={load}
                    onPromote={() => setPromoting({ row, from: e })}
                    hasNext={nextEnv(envs, e.slug) !== null}
                  />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {promoting ? (
        <PromoteDialog
          client={client}
          envs={envs}
          target={promoting}
          onClose={() => setPromoting(null)}
          onDone={() => {
            setPromoting(null);
            void load();
          }}
        />
      ) : null}
    </AdminFrame>
  );
}
