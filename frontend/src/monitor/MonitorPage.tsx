// The run monitor: the run on its workflow's canvas with every step's state changing live,
// a timeline, a step inspector, the log, state and checkpoints, and the operator's actions.
// Live state comes from the run's socket (journal replay, then stream; see ./socket);
// the REST run detail supplies the spec and each step's resolved input and attempts.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { ApiError } from '../api';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { TopBar } from '../components/Shell';
import type { WorkflowSpec } from '../lib/spec';
import { Gantt } from './Gantt';
import { MonitorCanvas } from './MonitorCanvas';
import {
  RUN_FINISHED,
  applyEntry,
  applySnapshot,
  compareRuns,
  durationMs,
  emptyRun,
  formatDuration,
  parseEntry,
  stepLabel,
  type Json,
  type RunView,
} from './model';
import { RunsApi, type RunDetail } from './runsApi';
import './monitor.css';
import { SchemaForm } from './SchemaForm';
import { LiveSocket, wsUrl, type LiveState } from './socket';

type Tab = 'step' | 'log' | 'state' | 'timeline' | 'compare';
type Panel = null | 'signal' | 'query' | 'restart' | 'resume';

function JsonBlock({ value, testId }: { value: unknown; testId?: string }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  return (
    <pre className="mon-json mono" data-testid={testId}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

function rec(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function MonitorPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const runId = Number(boot.run!.id);
  const runs = useMemo(() => new RunsApi(api), [api]);
  const canOperate = roleAtLeast(product.role, 'operator') || boot.user.isSuperuser;

  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [spec, setSpec] = useState<WorkflowSpec | null>(null);
  const [view, setView] = useState<RunView>(() => emptyRun(runId));
  const viewRef = useRef(view);
  viewRef.current = view;
  const [live, setLive] = useState<{ state: LiveState; detail?: string }>({ state: 'connecting' });
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>('step');
  const [panel, setPanel] = useState<Panel>(null);
  const [busy, setBusy] = useState(false);
  const [now, setNow] = useState(() => Date.now());

  // The spec and the run's static facts.
  useEffect(() => {
    let cancelled = false;
    runs
      .get(runId)
      .then(async (d) => {
        let s = d.spec;
        if (!s && d.product && d.workflow && d.version !== null) s = (await api.version(d.product, d.workflow, d.version)).spec;
        if (cancelled) return;
        setDetail(d);
        setSpec(s);
        // Steps the journal has not mentioned yet still show, as pending.
        setView((v) => {
          const base = emptyRun(runId, s);
          return { ...v, steps: { ...base.steps, ...v.steps } };
        });
      })
      .catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
    };
  }, [api, runs, runId]);

  // The live journal: replay from our last seq, then stream; reconnects by itself.
  useEffect(() => {
    const socket = new LiveSocket(
      () => wsUrl(`/ws/runs/${runId}/?after=${viewRef.current.lastSeq}`),
      {
        message(msg) {
          if (msg.type === 'entry') {
            const entry = parseEntry(msg);
            if (entry) setView((v) => applyEntry(v, entry));
          } else if (msg.type === 'snapshot') {
            setView((v) => {
              const pending = Object.fromEntries(Object.entries(v.steps).map(([t, s]) => [t, { ...s, status: 'pending' as const }]));
              return applySnapshot({ ...emptyRun(runId), steps: pending }, msg);
            });
          }
        },
        state(state, why) {
          setLive({ state, detail: why });
        },
      },
    ).start();
    return () => socket.stop();
  }, [runId]);

  const finished = RUN_FINISHED.includes(view.status);
  useEffect(() => {
    if (finished) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [finished]);

  // Resolved input and attempts live in the REST detail: refresh it as the run moves.
  const lastStatus = useRef('');
  const refreshKey = `${view.status}:${selected ?? ''}:${selected ? view.steps[selected]?.status : ''}`;
  useEffect(() => {
    if (!detail || refreshKey === lastStatus.current) return;
    lastStatus.current = refreshKey;
    const t = setTimeout(() => {
      runs.get(runId).then(setDetail, () => undefined);
    }, 250);
    return () => clearTimeout(t);
  }, [detail, runs, runId, refreshKey]);

  const act = useCallback(
    async (what: string, fn: () => Promise<unknown>) => {
      setBusy(true);
      setError('');
      setNotice('');
      try {
        const out = await fn();
        if (typeof out === 'number') {
          window.location.href = `/p/${product.slug}/runs/${out}/`;
          return;
        }
        setNotice(`${what}: done`);
        setPanel(null);
      } catch (e) {
        setError(e instanceof ApiError || e instanceof Error ? `${what}: ${e.message}` : String(e));
      } finally {
        setBusy(false);
      }
    },
    [product.slug],
  );

  const step = selected ? view.steps[selected] : undefined;
  const restStep = useMemo(() => {
    const steps = Array.isArray(detail?.raw.steps) ? (detail!.raw.steps as unknown[]) : [];
    return steps.map(rec).find((s) => s.tag === selected) ?? null;
  }, [detail, selected]);

  const runsUrl = detail?.workflow ? `/p/${product.slug}/w/${detail.workflow}/runs/` : null;

  return (
    <div className="page editor-page mon-page">
      <TopBar
        crumbs={[
          { label: 'Products', href: '/' },
          { label: product.name, href: `/p/${product.slug}/` },
          ...(detail?.workflow ? [{ label: detail.workflow, href: runsUrl ?? undefined }] : []),
          { label: `Run ${runId}` },
        ]}
      >
        <span className={`badge run-${view.status}`} data-testid="run-status">
          {view.status}
        </span>
        <span className={`mon-live mon-live-${live.state}`} data-testid="live-state" title={live.detail}>
          {live.state === 'live' ? '● live' : live.state}
          {live.detail ? ` (${live.detail})` : ''}
        </span>
        {view.environment || detail?.environment ? <span className="pill">{view.environment || detail?.environment}</span> : null}
        {view.version !== null ? <span className="muted small">v{view.version}</span> : null}
        {detail?.traceId ? (
          <span className="muted small mono" data-testid="trace-id" title="OpenTelemetry trace id">
            trace {detail.traceId}
          </span>
        ) : null}
        <span className="muted small" data-testid="run-duration">
          {formatDuration(durationMs(view.startedAt, view.finishedAt, now))}
        </span>
      </TopBar>
      <div className="mon-actions toolbar" data-testid="run-actions">
        {canOperate ? (
          <>
            {!finished ? (
              <button className="button danger" disabled={busy} data-testid="action-cancel" onClick={() => act('Cancel', () => runs.cancel(runId))}>
                Cancel
              </button>
            ) : null}
            {spec && Object.keys(spec.signals).length && !finished ? (
              <button className="button" data-testid="action-signal" onClick={() => setPanel(panel === 'signal' ? null : 'signal')}>
                Send signal…
              </button>
            ) : null}
            {spec && Object.keys(spec.queries).length ? (
              <button className="button" data-testid="action-query" onClick={() => setPanel(panel === 'query' ? null : 'query')}>
                Query…
              </button>
            ) : null}
            <button className="button" disabled={busy} data-testid="action-replay" onClick={() => act('Replay', () => runs.replay(runId))}>
              Replay
            </button>
            <button className="button" data-testid="action-restart" onClick={() => setPanel(panel === 'restart' ? null : 'restart')}>
              Restart with input…
            </button>
            {finished ? (
              <button className="button" data-testid="action-resume" onClick={() => setPanel(panel === 'resume' ? null : 'resume')}>
                Resume / replay from…
              </button>
            ) : null}
          </>
        ) : (
          <span className="muted small">Viewers can watch; operators act on runs.</span>
        )}
        {runsUrl ? (
          <a className="link small" href={runsUrl} data-testid="runs-link">
            All runs
          </a>
        ) : null}
        {notice ? <span className="validation-ok small">{notice}</span> : null}
      </div>
      {error ? (
        <div className="alert" role="alert" data-testid="mon-error">
          {error}
        </div>
      ) : null}
      {panel ? (
        <div className="mon-panel" data-testid={`panel-${panel}`}>
          {panel === 'signal' && spec ? <SignalPanel spec={spec} busy={busy} onSend={(name, payload) => act(`Signal ${name}`, () => runs.signal(runId, name, payload))} /> : null}
          {panel === 'query' && spec ? <QueryPanel names={Object.keys(spec.queries)} run={(name) => runs.query(runId, name)} /> : null}
          {panel === 'restart' ? (
            <SchemaForm
              schema={spec?.input ?? {}}
              initial={view.input ?? {}}
              submitLabel="Restart with this input"
              busy={busy}
              testId="restart-form"
              onSubmit={(input) => act('Restart', () => runs.restart(runId, input))}
            />
          ) : null}
          {panel === 'resume' ? (
            <ResumePanel
              view={view}
              busy={busy}
              onResume={(from) => act('Resume', () => runs.resume(runId, from))}
              onFork={(step, outputs) => act('Replay from step', () => runs.fork(runId, step, outputs))}
            />
          ) : null}
        </div>
      ) : null}
      <div className="mon-body">
        <div className="mon-stage">
          {spec ? <MonitorCanvas spec={spec} view={view} selected={selected} now={now} onSelect={(t) => {
            setSelected(t);
            setTab('step');
          }} /> : <p className="muted pad">Loading the workflow…</p>}
        </div>
        <aside className="mon-side">
          <div className="segmented mon-tabs" role="tablist">
            {(['step', 'log', 'state', 'timeline', 'compare'] as Tab[]).map((t) => (
              <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? 'active' : ''} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
                {t}
              </button>
            ))}
          </div>
          <div className="mon-tab-body">
            {tab === 'step' ? (
              step ? (
                <div data-testid="step-inspector">
                  <h3>
                    {step.tag} <span className={`badge run-${step.status}`}>{stepLabel(step)}</span>
                  </h3>
                  <p className="muted small">
                    {step.sequence ? `sequence ${step.sequence} · ` : ''}
                    attempt {step.attempt}
                    {step.maxAttempts ? ` of ${step.maxAttempts}` : ''} · {formatDuration(durationMs(step.startedAt, step.finishedAt, now))}
                  </p>
                  <h4>Resolved input</h4>
                  <JsonBlock value={restStep?.input ?? step.input} testId="step-input" />
                  <h4>Output</h4>
                  <JsonBlock value={step.output ?? restStep?.output} testId="step-output" />
                  {step.error !== null || restStep?.error ? (
                    <>
                      <h4>Error</h4>
                      <JsonBlock value={step.error ?? restStep?.error} testId="step-error" />
                    </>
                  ) : null}
                  <h4>Attempts</h4>
                  <table className="table mon-attempts">
                    <tbody>
                      {(Array.isArray(restStep?.attempts) ? (restStep!.attempts as unknown[]).map(rec) : step.attempts.map((a) => ({ n: a.n, status: a.status, started_at: a.startedAt, finished_at: a.finishedAt, error: a.error }))).map((a, i) => (
                        <tr key={i}>
                          <td>#{String(a.n ?? i + 1)}</td>
                          <td>{String(a.status ?? '')}</td>
                          <td>{formatDuration(durationMs(typeof a.started_at === 'string' ? a.started_at : null, typeof a.finished_at === 'string' ? a.finished_at : null, now))}</td>
                          <td className="mono small">{a.error ? JSON.stringify(a.error).slice(0, 120) : ''}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              ) : (
                <div className="pad">
                  <p className="muted">Select a step on the canvas.</p>
                  <h4>Run input</h4>
                  <JsonBlock value={view.input} testId="run-input" />
                  {view.output !== null ? (
                    <>
                      <h4>Output</h4>
                      <JsonBlock value={view.output} testId="run-output" />
                    </>
                  ) : null}
                  {view.error !== null ? (
                    <>
                      <h4>Error</h4>
                      <JsonBlock value={view.error} testId="run-error" />
                    </>
                  ) : null}
                </div>
              )
            ) : null}
            {tab === 'log' ? <LogView view={view} /> : null}
            {tab === 'state' ? (
              <div data-testid="state-view">
                <h4>State</h4>
                <JsonBlock value={Object.keys(view.state).length ? view.state : null} />
                <h4>Checkpoints</h4>
                {view.checkpoints.length === 0 ? <p className="muted">None.</p> : null}
                {view.checkpoints.map((c, i) => (
                  <div key={i} className="mon-checkpoint">
                    <strong>{c.name}</strong> <span className="muted small">{c.step} · {c.at}</span>
                    <JsonBlock value={c.data} />
                  </div>
                ))}
                <h4>Signals received</h4>
                {view.signals.length === 0 ? <p className="muted">None.</p> : null}
                {view.signals.map((s, i) => (
                  <div key={i}>
                    <strong>{s.name}</strong> <span className="muted small">{s.by ? `by ${s.by} · ` : ''}{s.at}</span>
                    <JsonBlock value={s.payload} />
                  </div>
                ))}
              </div>
            ) : null}
            {tab === 'timeline' ? <Gantt view={view} now={now} onSelect={(t) => { setSelected(t); setTab('step'); }} /> : null}
            {tab === 'compare' ? <ComparePanel view={view} runs={runs} spec={spec} /> : null}
          </div>
        </aside>
      </div>
    </div>
  );
}

function LogView({ view }: { view: RunView }) {
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => end.current?.scrollIntoView?.({ block: 'end' }), [view.log.length]);
  return (
    <div className="mon-log mono small" data-testid="log-view">
      {view.log.length === 0 ? <p className="muted">No log lines.</p> : null}
      {view.log.map((l) => (
        <div key={l.seq} className={`mon-log-line level-${l.level}`}>
          <span className="muted">#{l.seq}</span> {l.step ? <strong>{l.step}</strong> : null} {l.message}
        </div>
      ))}
      <div ref={end} />
    </div>
  );
}

function SignalPanel({ spec, busy, onSend }: { spec: WorkflowSpec; busy: boolean; onSend(name: string, payload: Record<string, unknown>): void }) {
  const names = Object.keys(spec.signals);
  const [name, setName] = useState(names[0] ?? '');
  return (
    <div>
      <label className="mon-field">
        <span>Signal</span>
        <select value={name} onChange={(e) => setName(e.target.value)} data-testid="signal-name">
          {names.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
      </label>
      <SchemaForm key={name} schema={spec.signals[name]?.input ?? {}} submitLabel={`Send ${name}`} busy={busy} testId="signal-form" onSubmit={(payload) => onSend(name, payload)} />
    </div>
  );
}

function QueryPanel({ names, run }: { names: string[]; run(name: string): Promise<unknown> }) {
  const [name, setName] = useState(names[0] ?? '');
  const [result, setResult] = useState<unknown>(undefined);
  const [error, setError] = useState('');
  return (
    <div>
      <label className="mon-field">
        <span>Query</span>
        <select value={name} onChange={(e) => setName(e.target.value)}>
          {names.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
      </label>
      <button
        className="button primary"
        data-testid="query-run"
        onClick={() =>
          run(name).then(
            (r) => {
              setError('');
              setResult(r);
            },
            (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
          )
        }
      >
        Run query
      </button>
      {error ? <div className="alert">{error}</div> : null}
      {result !== undefined ? <JsonBlock value={result} testId="query-result" /> : null}
    </div>
  );
}

function ResumePanel({ view, busy, onResume, onFork }: { view: RunView; busy: boolean; onResume(from: { skip?: string[]; checkpoint?: string }): void; onFork(step: string, outputs: Record<string, unknown>): void }) {
  const tags = Object.keys(view.steps);
  const failed = Object.values(view.steps).find((s) => s.status === 'failed');
  const [mode, setMode] = useState<'failure' | 'checkpoint' | 'step'>(view.checkpoints.length ? 'checkpoint' : 'failure');
  const [skip, setSkip] = useState<string[]>([]);
  const [checkpoint, setCheckpoint] = useState(view.checkpoints[view.checkpoints.length - 1]?.name ?? '');
  const [step, setStep] = useState(failed?.tag ?? tags[0] ?? '');
  const [outputs, setOutputs] = useState('');
  const [error, setError] = useState('');
  return (
    <form
      className="mon-form"
      data-testid="resume-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (mode === 'step') {
          let edited: Record<string, unknown> = {};
          if (outputs.trim()) {
            try {
              edited = rec(JSON.parse(outputs));
            } catch {
              setError('edited outputs must be a JSON object {step: output}');
              return;
            }
          }
          onFork(step, edited);
        } else if (mode === 'checkpoint') onResume({ checkpoint, skip });
        else onResume({ skip });
      }}
    >
      <div className="segmented">
        <button type="button" className={mode === 'failure' ? 'active' : ''} onClick={() => setMode('failure')}>
          From the failure
        </button>
        <button type="button" className={mode === 'checkpoint' ? 'active' : ''} disabled={!view.checkpoints.length} onClick={() => setMode('checkpoint')}>
          From a checkpoint
        </button>
        <button type="button" className={mode === 'step' ? 'active' : ''} onClick={() => setMode('step')}>
          Replay from a step
        </button>
      </div>
      {mode === 'checkpoint' ? (
        <select value={checkpoint} onChange={(e) => setCheckpoint(e.target.value)}>
          {view.checkpoints.map((c) => (
            <option key={c.name}>{c.name}</option>
          ))}
        </select>
      ) : null}
      {mode !== 'step' ? (
        <label className="mon-field">
          <span>Skip these steps</span>
          <select multiple value={skip} onChange={(e) => setSkip([...e.target.selectedOptions].map((o) => o.value))}>
            {tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
      ) : (
        <>
          <select value={step} onChange={(e) => setStep(e.target.value)}>
            {tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
          <label className="mon-field">
            <span>Edited outputs of earlier steps (optional JSON: {'{"step": output}'})</span>
            <textarea className="mono" rows={3} value={outputs} onChange={(e) => setOutputs(e.target.value)} />
          </label>
        </>
      )}
      {error ? <em className="mon-error">{error}</em> : null}
      <button type="submit" className="button primary" disabled={busy}>
        {mode === 'step' ? 'Replay from step' : 'Resume'}
      </button>
    </form>
  );
}

function ComparePanel({ view, runs, spec }: { view: RunView; runs: RunsApi; spec: WorkflowSpec | null }) {
  const [other, setOther] = useState('');
  const [right, setRight] = useState<RunView | null>(null);
  const [error, setError] = useState('');
  const load = async () => {
    setError('');
    try {
      const d = await runs.get(other);
      let v = emptyRun(d.id, d.spec ?? spec);
      v = applySnapshot(v, { ...d.raw, last_seq: 0 });
      for (const entry of d.journal) v = applyEntry(v, entry);
      setRight(v);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const rows = right ? compareRuns(view, right) : [];
  return (
    <div data-testid="compare-view">
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <input placeholder="Other run id" value={other} onChange={(e) => setOther(e.target.value)} data-testid="compare-id" />
        <button className="button" type="submit">
          Compare
        </button>
      </form>
      {error ? <div className="alert">{error}</div> : null}
      {right ? (
        <>
          <h4>Input</h4>
          <div className="mon-compare">
            <JsonBlock value={view.input} />
            <JsonBlock value={right.input as Json} />
          </div>
          <table className="table small" data-testid="compare-table">
            <thead>
              <tr>
                <th>step</th>
                <th>run {view.id}</th>
                <th>run {right.id}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.tag} className={r.same ? '' : 'mon-diff'}>
                  <td>{r.tag}</td>
                  <td title={JSON.stringify(r.left?.output ?? null)}>{r.left?.status ?? '—'}</td>
                  <td title={JSON.stringify(r.right?.output ?? null)}>{r.right?.status ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
