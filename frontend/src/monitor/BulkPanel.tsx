// Bulk fix-forward: pick an action for the checked runs (or every run matching the filter),
// preview it (how many, which version, which steps run again, which runs are refused and
// why), type the confirmation above the threshold, then watch it go chunk by chunk.

import { useState } from 'react';

import type { BulkAction, BulkPreview, BulkProgress, BulkTarget, ProductRunsApi } from './productRuns';

const LABELS: Record<BulkAction, string> = {
  cancel: 'Cancel',
  retry: 'Retry from the failed step (live version)',
  replay: 'Replay (same version)',
  fork: 'Fork from a step (live version)',
};

export function BulkPanel({ client, target, label, onDone }: { client: ProductRunsApi; target: BulkTarget; label: string; onDone: () => void }) {
  const [action, setAction] = useState<BulkAction>('retry');
  const [step, setStep] = useState('');
  const [reason, setReason] = useState('');
  const [preview, setPreview] = useState<BulkPreview | null>(null);
  const [typed, setTyped] = useState('');
  const [progress, setProgress] = useState<BulkProgress | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const ask = async () => {
    setError('');
    setProgress(null);
    setBusy(true);
    try {
      setPreview(await client.preview(action, target, action === 'fork' ? step : ''));
      setTyped('');
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setPreview(null);
    } finally {
      setBusy(false);
    }
  };

  const go = async () => {
    if (!preview) return;
    setBusy(true);
    setError('');
    const key = `bulk-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      await client.apply(action, preview, { step: action === 'fork' ? step : '', reason, confirm: typed, key }, setProgress);
      onDone();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  const confirmed = !preview?.confirmRequired || typed === preview.confirmText;
  return (
    <section className="mon-panel runs-bulk" data-testid="bulk-panel">
      <strong>{label}</strong>
      <div className="runs-bulk-row">
        <select value={action} onChange={(e) => { setAction(e.target.value as BulkAction); setPreview(null); }} data-testid="bulk-action" aria-label="Bulk action">
          {(Object.keys(LABELS) as BulkAction[]).map((a) => (
            <option key={a} value={a}>
              {LABELS[a]}
            </option>
          ))}
        </select>
        {action === 'fork' ? <input placeholder="step tag" value={step} onChange={(e) => setStep(e.target.value)} data-testid="bulk-step" aria-label="Fork from step" /> : null}
        <input placeholder="reason (optional, audited)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="bulk-reason" aria-label="Reason" />
        <button type="button" className="button" onClick={() => void ask()} disabled={busy} data-testid="bulk-preview">
          Preview…
        </button>
      </div>
      {error ? (
        <div className="alert" role="alert" data-testid="bulk-error">
          {error}
        </div>
      ) : null}
      {preview ? (
        <div className="runs-bulk-preview" data-testid="bulk-preview-box">
          <p data-testid="bulk-count">
            <strong>{preview.count}</strong> run{preview.count === 1 ? '' : 's'} will be {action === 'cancel' ? 'cancelled' : `${action === 'retry' ? 'retried' : action === 'replay' ? 'replayed' : 'forked'}`}
            {preview.refused.length ? `; ${preview.refused.length} refused` : ''} (at most {preview.cap} per request).
          </p>
          {Object.keys(preview.versions).length ? (
            <p className="small" data-testid="bulk-versions">
              version: {Object.entries(preview.versions).map(([where, v]) => `${where} → v${v ?? '?'}`).join(', ')}
            </p>
          ) : null}
          {Object.keys(preview.rerun).length ? (
            <p className="small" data-testid="bulk-rerun">
              runs again: {Object.entries(preview.rerun).map(([tag, n]) => `${tag} (${n})`).join(', ')}
            </p>
          ) : null}
          {preview.refused.length ? (
            <ul className="small runs-bulk-refused">
              {preview.refused.slice(0, 10).map((r) => (
                <li key={r.run}>
                  #{r.run}: {r.reason}
                </li>
              ))}
            </ul>
          ) : null}
          {preview.confirmRequired ? (
            <label className="mon-field">
              <span>
                Type <code>{preview.confirmText}</code> to confirm
              </span>
              <input value={typed} onChange={(e) => setTyped(e.target.value)} data-testid="bulk-confirm" />
            </label>
          ) : null}
          <button type="button" className="button primary" disabled={busy || !confirmed || preview.count === 0} onClick={() => void go()} data-testid="bulk-go">
            {LABELS[action].split(' (')[0]} {preview.count} run{preview.count === 1 ? '' : 's'}
          </button>
        </div>
      ) : null}
      {progress ? (
        <div data-testid="bulk-progress" data-done={progress.sent === progress.total ? 'true' : 'false'}>
          <progress max={progress.total} value={progress.sent} />
          <span className="small">
            {' '}
            {progress.sent}/{progress.total} sent · {progress.done} done · {progress.failed} refused
          </span>
          {progress.messages.slice(0, 10).map((m) => (
            <div key={m} className="small mon-error">
              {m}
            </div>
          ))}
        </div>
      ) : null}
    </section>
  );
}
