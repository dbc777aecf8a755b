// Retention per environment: how long finished runs and audit entries are kept before
// the hourly prune (runtime/retention.py) deletes them. An empty field takes the product
// default, shown as its placeholder.
import { useState, type FormEvent } from 'react';

import { errorText } from './AdminNav';
import type { AdminClient } from './client';
import { RETENTION_KEYS, type Env, type RetentionKey } from './lib';

const LABELS: Record<RetentionKey, string> = {
  completed_days: 'Completed runs (days)',
  failed_days: 'Failed runs (days)',
  keep_last: 'Always keep last (per workflow)',
  audit_days: 'Audit entries (days)',
};

function RetentionRow({ client, env, onSaved }: { client: AdminClient; env: Env; onSaved(): void }) {
  const initial = Object.fromEntries(RETENTION_KEYS.map((k) => [k, env.retention[k]?.toString() ?? '']));
  const [values, setValues] = useState<Record<string, string>>(initial);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState(false);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    setSaved(false);
    const body: Record<string, number | null> = {};
    for (const key of RETENTION_KEYS) {
      const text = (values[key] ?? '').trim();
      body[key] = text === '' ? null : Number(text);
    }
    try {
      await client.updateRetention(env.slug, body);
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <tr data-testid={`retention-${env.slug}`}>
      <td>
        <strong>{env.name}</strong> <span className="muted mono">{env.slug}</span>
      </td>
      {RETENTION_KEYS.map((key) => (
        <td key={key}>
          <input
            type="number"
            min={0}
            max={36500}
            step={1}
            className="narrow"
            value={values[key] ?? ''}
            placeholder={env.retentionEffective[key]?.toString() ?? ''}
            onChange={(e) => setValues({ ...values, [key]: e.target.value })}
            aria-label={`${LABELS[key]} for ${env.slug}`}
            data-testid={`retention-${env.slug}-${key}`}
          />
        </td>
      ))}
      <td>
        <form onSubmit={save}>
          <button type="submit" className="button small" data-testid={`retention-${env.slug}-save`}>
            Save
          </button>
          {saved ? <span className="muted small"> saved</span> : null}
        </form>
        {error ? <div className="cell-error">{error}</div> : null}
      </td>
    </tr>
  );
}

export function RetentionEditor({ client, envs, onSaved }: { client: AdminClient; envs: Env[]; onSaved(): void }) {
  return (
    <>
      <p className="muted small">
        Finished runs older than this are pruned every hour (0 keeps them forever); an empty field takes the product default shown in grey. Runs another run was made from are kept until it goes. <span className="mono">manage.py prune --dry-run</span> shows what would go.
      </p>
      <table className="table" data-testid="retention-table">
        <thead>
          <tr>
            <th>Environment</th>
            {RETENTION_KEYS.map((key) => (
              <th key={key}>{LABELS[key]}</th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {envs.map((env) => (
            <RetentionRow key={`${env.slug}:${JSON.stringify(env.retention)}`} client={client} env={env} onSaved={onSaved} />
          ))}
        </tbody>
      </table>
    </>
  );
}
