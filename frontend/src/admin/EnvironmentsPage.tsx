// Environments: the product's environments in promotion order (create, rename, reorder,
// mark production), each component's configuration per environment (secrets are
// write-only: the page shows their names, never their values) and a diff of two.
import { useCallback, useEffect, useState, type FormEvent } from 'react';

import { roleAtLeast } from '../bootstrap';
import { AdminFrame, errorText, useAdmin } from './AdminNav';
import type { AdminClient, ComponentRef } from './client';
import { ConfigDiffList } from './Differences';
import { RetentionEditor } from './Retention';
import { moveItem, parseJsonObject, secretsPatch, type ComponentConfig, type Env, type EnvDiff, type SecretEdit } from './lib';

function EnvRow({ client, env, index, count, isAdmin, onMove, onChanged }: {
  client: AdminClient;
  env: Env;
  index: number;
  count: number;
  isAdmin: boolean;
  onMove(delta: number): void;
  onChanged(): void;
}) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(env.name);
  const [slug, setSlug] = useState(env.slug);
  const [error, setError] = useState('');
  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
      setEditing(false);
      onChanged();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const save = (e: FormEvent) => {
    e.preventDefault();
    const body: { name?: string; slug?: string } = {};
    if (name !== env.name) body.name = name;
    if (slug !== env.slug) body.slug = slug;
    void act(() => client.updateEnvironment(env.slug, body));
  };
  return (
    <tr data-testid={`env-${env.slug}`}>
      <td className="order-cell">
        {isAdmin ? (
          <span className="order-buttons">
            <button type="button" className="icon-button" disabled={index === 0} onClick={() => onMove(-1)} aria-label={`Move ${env.slug} up`} data-testid={`env-${env.slug}-up`}>
              ↑
            </button>
            <button type="button" className="icon-button" disabled={index === count - 1} onClick={() => onMove(1)} aria-label={`Move ${env.slug} down`} data-testid={`env-${env.slug}-down`}>
              ↓
            </button>
          </span>
        ) : null}
        {index + 1}
      </td>
      <td>
        {editing ? (
          <form className="inline-form" onSubmit={save}>
            <input value={name} onChange={(e) => setName(e.target.value)} aria-label="Name" data-testid={`env-${env.slug}-name`} required />
            <input value={slug} onChange={(e) => setSlug(e.target.value)} aria-label="Slug" disabled={env.isProduction} title={env.isProduction ? 'A production environment keeps its slug' : ''} data-testid={`env-${env.slug}-slug`} required pattern="[A-Za-z0-9_\-]+" />
            <button type="submit" className="button primary small" data-testid={`env-${env.slug}-save`}>
              Save
            </button>
            <button type="button" className="button ghost small" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <>
            <strong>{env.name}</strong> <span className="muted mono">{env.slug}</span>
          </>
        )}
        {error ? <div className="cell-error">{error}</div> : null}
      </td>
      <td>{env.isProduction ? <span className="prd-chip" title="Cannot be deleted; keeps its slug; only admins run workflows here">production · protected</span> : null}</td>
      <td className="row-actions">
        {isAdmin && !editing ? (
          <>
            <button type="button" className="button small" onClick={() => setEditing(true)} data-testid={`env-${env.slug}-rename`}>
              Rename
            </button>
            {env.isProduction ? (
              <button type="button" className="button small" onClick={() => act(() => client.unmarkProduction(env.slug))} data-testid={`env-${env.slug}-unmark`}>
                Unmark production
              </button>
            ) : (
              <button type="button" className="button small" onClick={() => act(() => client.markProduction(env.slug))} data-testid={`env-${env.slug}-mark`}>
                Mark production
              </button>
            )}
            <button
              type="button"
              className="button small danger"
              disabled={env.isProduction}
              title={env.isProduction ? 'A production environment cannot be deleted' : ''}
              onClick={() => window.confirm(`Delete environment ${env.slug}?`) && act(() => client.deleteEnvironment(env.slug))}
              data-testid={`env-${env.slug}-delete`}
            >
              Delete
            </button>
          </>
        ) : null}
      </td>
    </tr>
  );
}

function NewEnvironment({ client, onCreated }: { client: AdminClient; onCreated(): void }) {
  const [slug, setSlug] = useState('');
  const [name, setName] = useState('');
  const [production, setProduction] = useState(false);
  const [error, setError] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    try {
      await client.createEnvironment({ slug, name: name || slug, is_production: production });
      setSlug('');
      setName('');
      setProduction(false);
      onCreated();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="inline-form card" onSubmit={submit} data-testid="new-env-form">
      <input placeholder="slug (e.g. qa)" value={slug} onChange={(e) => setSlug(e.target.value)} required pattern="[A-Za-z0-9_\-]+" aria-label="New environment slug" data-testid="new-env-slug" />
      <input placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} aria-label="New environment name" data-testid="new-env-name" />
      <label className="check">
        <input type="checkbox" checked={production} onChange={(e) => setProduction(e.target.checked)} /> production
      </label>
      <button type="submit" className="button primary" data-testid="new-env-create">
        Add environment
      </button>
      {error ? <div className="cell-error">{error}</div> : null}
    </form>
  );
}

const pretty = (value: object) => (Object.keys(value).length ? JSON.stringify(value, null, 2) : '');

function ConfigEditor({ client, envs, components, canEdit }: { client: AdminClient; envs: Env[]; components: ComponentRef[]; canEdit: boolean }) {
  const [component, setComponent] = useState(components[0]?.tag ?? '');
  const [env, setEnv] = useState(envs[0]?.slug ?? '');
  const [loaded, setLoaded] = useState<ComponentConfig | null>(null);
  const [texts, setTexts] = useState({ config: '', variables: '', constants: '' });
  const [secrets, setSecrets] = useState<SecretEdit[]>([]);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState('');

  const show = useCallback((c: ComponentConfig) => {
    setLoaded(c);
    setTexts({ config: pretty(c.config), variables: pretty(c.variables), constants: pretty(c.constants) });
    setSecrets(c.secretNames.map((name) => ({ name, value: '', remove: false })));
  }, []);

  useEffect(() => {
    if (!component && components[0]) setComponent(components[0].tag);
  }, [components, component]);
  useEffect(() => {
    if (!env && envs[0]) setEnv(envs[0].slug);
  }, [envs, env]);
  useEffect(() => {
    if (!component || !env) return;
    setError('');
    setSaved('');
    client.componentConfig(component, env).then(show, (e: unknown) => setError(errorText(e)));
  }, [client, component, env, show]);

  const parsed = { config: parseJsonObject(texts.config), variables: parseJsonObject(texts.variables), constants: parseJsonObject(texts.constants) };
  const invalid = Object.values(parsed).some((p) => !p.ok);

  const save = async () => {
    if (!parsed.config.ok || !parsed.variables.ok || !parsed.constants.ok) return;
    setError('');
    try {
      const out = await client.saveComponentConfig(component, env, {
        config: parsed.config.value,
        variables: parsed.variables.value,
        constants: parsed.constants.value,
        secrets: secretsPatch(secrets),
      });
      show(out);
      setSaved(`Saved ${component} in ${env}.`);
    } catch (e) {
      setError(errorText(e));
    }
  };

  if (!components.length) return <p className="muted">This product has no components yet.</p>;
  const field = (key: 'config' | 'variables' | 'constants', hint: string) => {
    const p = parsed[key];
    return (
      <label className="field">
        <span className="field-label">
          {key} <span className="muted small">{hint}</span>
        </span>
        <textarea rows={5} className={p.ok ? 'mono' : 'mono invalid'} value={texts[key]} readOnly={!canEdit} onChange={(e) => setTexts({ ...texts, [key]: e.target.value })} data-testid={`config-${key}`} placeholder="{ }" />
        {!p.ok ? <span className="cell-error">{p.error}</span> : null}
      </label>
    );
  };
  return (
    <div className="config-editor card" data-testid="config-editor">
      <div className="inline-form">
        <select value={component} onChange={(e) => setComponent(e.target.value)} aria-label="Component" data-testid="config-component">
          {components.map((c) => (
            <option key={c.tag} value={c.tag}>
              {c.tag} ({c.kind})
            </option>
          ))}
        </select>
        <span className="muted">in</span>
        <select value={env} onChange={(e) => setEnv(e.target.value)} aria-label="Environment" data-testid="config-env">
          {envs.map((e) => (
            <option key={e.slug} value={e.slug}>
              {e.slug}
            </option>
          ))}
        </select>
        {loaded?.updatedAt ? <span className="muted small">updated {new Date(loaded.updatedAt).toLocaleString()}</span> : <span className="muted small">not configured yet</span>}
      </div>
      <div className="config-grid">
        {field('config', 'base URL, auth…')}
        {field('variables', '$Variable{…}')}
        {field('constants', '$Constant{…}')}
      </div>
      <div className="secrets" data-testid="config-secrets">
        <div className="field-label">
          secrets <span className="muted small">write-only: stored encrypted, never shown; leave blank to keep</span>
        </div>
        {loaded?.secretsUnreadable ? <div className="alert warn">Stored secrets cannot be decrypted (the key changed): set each again.</div> : null}
        {secrets.map((s, i) => {
          const stored = loaded?.secretNames.includes(s.name) ?? false;
          const update = (patch: Partial<SecretEdit>) => setSecrets(secrets.map((x, j) => (j === i ? { ...x, ...patch } : x)));
          return (
            <div key={i} className="secret-row" data-testid={`secret-${s.name || i}`}>
              <input className="mono" value={s.name} readOnly={stored || !canEdit} onChange={(e) => update({ name: e.target.value })} placeholder="NAME" aria-label="Secret name" />
              <input
                type="password"
                autoComplete="new-password"
                value={s.value}
                disabled={!canEdit || s.remove}
                onChange={(e) => update({ value: e.target.value })}
                placeholder={stored ? '••• (set — type to replace)' : 'value'}
                aria-label={`Value of ${s.name || 'new secret'}`}
                data-testid={`secret-value-${s.name || i}`}
              />
              {canEdit && stored ? (
                <label className="check small">
                  <input type="checkbox" checked={s.remove} onChange={(e) => update({ remove: e.target.checked })} /> remove
                </label>
              ) : null}
            </div>
          );
        })}
        {canEdit ? (
          <button type="button" className="button small" onClick={() => setSecrets([...secrets, { name: '', value: '', remove: false }])} data-testid="secret-add">
            + secret
          </button>
        ) : null}
      </div>
      {error ? <div className="alert">{error}</div> : null}
      {saved ? <div className="ok-note">{saved}</div> : null}
      {canEdit ? (
        <div className="form-actions">
          <button type="button" className="button primary" disabled={invalid} onClick={save} data-testid="config-save">
            Save {component} in {env}
          </button>
        </div>
      ) : (
        <p className="muted small">Only admins change configuration.</p>
      )}
    </div>
  );
}

function EnvDiffView({ client, envs }: { client: AdminClient; envs: Env[] }) {
  const [a, setA] = useState(envs[0]?.slug ?? '');
  const [b, setB] = useState(envs[envs.length - 1]?.slug ?? '');
  const [diff, setDiff] = useState<EnvDiff | null>(null);
  const [error, setError] = useState('');
  const compare = async () => {
    setError('');
    try {
      setDiff(await client.envDiff(a, b));
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <div className="card" data-testid="env-diff">
      <div className="inline-form">
        <select value={a} onChange={(e) => setA(e.target.value)} aria-label="First environment" data-testid="diff-a">
          {envs.map((e) => (
            <option key={e.slug}>{e.slug}</option>
          ))}
        </select>
        <span className="muted">vs</span>
        <select value={b} onChange={(e) => setB(e.target.value)} aria-label="Second environment" data-testid="diff-b">
          {envs.map((e) => (
            <option key={e.slug}>{e.slug}</option>
          ))}
        </select>
        <button type="button" className="button" onClick={compare} disabled={!a || !b || a === b} data-testid="diff-compare">
          Compare
        </button>
      </div>
      {error ? <div className="alert">{error}</div> : null}
      {diff ? (
        <>
          <h4>Components</h4>
          <ConfigDiffList diffs={diff.components} a={diff.a} b={diff.b} testId="env-diff-components" />
          <h4>Workflows</h4>
          {diff.workflows.length ? (
            <table className="table compact" data-testid="env-diff-workflows">
              <thead>
                <tr>
                  <th>Workflow</th>
                  <th>{diff.a}</th>
                  <th>{diff.b}</th>
                </tr>
              </thead>
              <tbody>
                {diff.workflows.map((w) => (
                  <tr key={w.workflow}>
                    <td className="mono">{w.workflow}</td>
                    <td>
                      {w.a.active ? 'active' : 'inactive'} {w.a.version ? `v${w.a.version}` : ''}
                    </td>
                    <td>
                      {w.b.active ? 'active' : 'inactive'} {w.b.version ? `v${w.b.version}` : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted small">Every workflow has the same activation and version in both.</p>
          )}
        </>
      ) : null}
    </div>
  );
}

export function EnvironmentsPage() {
  const { client, isAdmin, product } = useAdmin();
  const canReadConfig = roleAtLeast(product.role, 'designer');
  const [envs, setEnvs] = useState<Env[] | null>(null);
  const [components, setComponents] = useState<ComponentRef[]>([]);
  const [error, setError] = useState('');

  const load = useCallback(() => {
    client.environments().then(setEnvs, (e: unknown) => setError(errorText(e)));
  }, [client]);
  useEffect(() => {
    load();
    client.components().then(setComponents, () => setComponents([]));
  }, [client, load]);

  const move = async (index: number, delta: number) => {
    if (!envs) return;
    const order = moveItem(envs, index, delta);
    setEnvs(order);
    try {
      setEnvs(await client.reorder(order.map((e) => e.slug)));
    } catch (e) {
      setError(errorText(e));
      load();
    }
  };

  return (
    <AdminFrame section="environments" title="Environments" subtitle="In promotion order: a version moves from the first towards production.">
      {error ? <div className="alert">{error}</div> : null}
      {envs ? (
        <table className="table" data-testid="env-table">
          <thead>
            <tr>
              <th>Order</th>
              <th>Environment</th>
              <th />
              <th />
            </tr>
          </thead>
          <tbody>
            {envs.map((env, i) => (
              <EnvRow key={env.slug} client={client} env={env} index={i} count={envs.length} isAdmin={isAdmin} onMove={(d) => move(i, d)} onChanged={load} />
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">Loading…</p>
      )}
      {isAdmin ? <NewEnvironment client={client} onCreated={load} /> : null}
      {canReadConfig && envs ? (
        <section>
          <h2>Component configuration</h2>
          <ConfigEditor client={client} envs={envs} components={components} canEdit={isAdmin} />
        </section>
      ) : null}
      {isAdmin && envs ? (
        <section>
          <h2>Retention</h2>
          <RetentionEditor client={client} envs={envs} onSaved={load} />
        </section>
      ) : null}
      {isAdmin && envs && envs.length > 1 ? (
        <section>
          <h2>Compare two environments</h2>
          <EnvDiffView client={client} envs={envs} />
        </section>
      ) : null}
    </AdminFrame>
  );
}
