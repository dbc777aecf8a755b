// The run monitor: the run on its workflow's canvas with every step's state changing live,
// a timeline, a step inspector, the log, state and checkpoints, and the operator's actions.
// Live state comes from the run's socket (journal replay, then stream; see ./socket);
// the REST run detail supplies the spec, each step's resolved input and attempts, and
// whether the asking user may act on this run (buttons they cannot use are not shown).
// Actions with side effects are confirmed, with an optional reason.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { ApiError } from '../api';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { TopBar } from '../components/Shell';
import type { WorkflowSpec } from '../lib/spec';
import { ComparePanel } from './ComparePanel';
import { ConfirmDialog, type Confirmation } from './ConfirmDialog';
import { ErrorBoundary } from './ErrorBoundary';
import { Gantt } from './Gantt';
import { Lineage } from './Lineage';
import { MonitorCanvas } from './MonitorCanvas';
import { RUN_FINISHED, applyEntry, applySnapshot, durationMs, emptyRun, formatDuration, parseEntry, settled, type RunView } from './model';
import { JsonBlock, LogView, QueryPanel, ResumePanel, SignalPanel } from './Panels';
import { RunsApi, type RunDetail } from './runsApi';
import './monitor.css';
import { SchemaForm } from './SchemaForm';
import { LiveSocket, wsUrl, type LiveState } from './socket';
import { StepInspector } from './StepInspector';

type Tab = 'step' | 'log' | 'state' | 'timeline' | 'compare';
type Panel = null | 'signal' | 'query' | 'restart' | 'resume';

export function MonitorPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const runId = Number(boot.run!.id);
  const runs = useMemo(() => new RunsApi(api), [api]);
  const canOperate = roleAtLeast(product.role, 'operator') || boot.user.isSuperuser;

  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [spec, setSpec] = useState<WorkflowSpec | null>(null);
  const [journalView, setView] = useState<RunView>(() => emptyRun(runId));
  const viewRef = useRef(journalView);
  viewRef.current = journalView;
  const [live, setLive] = useState<{ state: LiveState; detail?: string }>({ state: 'connecting' });
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  // A link may name the step to open at (`?step=<tag>`, e.g. from the runs grid).
  const [selected, setSelected] = useState<string | null>(() => new URLSearchParams(window.location.search).get('step'));
  const [tab, setTab] = useState<Tab>('step');
  const [panel, setPanel] = useState<Panel>(null);
  const [confirm, setConfirm] = useState<Confirmation | null>(null);
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

  // Once the run has ended no timer runs: every duration stops at the run's end.
  const view = useMemo(() => settled(journalView), [journalView]);
  const finished = RUN_FINISHED.includes(view.status);
  useEffect(() => {
    if (finished) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [finished]);
  const clock = finished ? Date.parse(view.finishedAt ?? '') || now : now;

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
        setConfirm(null);
      }
    },
    [product.slug],
  );

  const runsUrl = detail?.workflow ? `/p/${product.slug}/w/${detail.workflow}/runs/` : null;
  // Offered only when the server says this user may act on this run (role, production).
  const canAct = canOperate && !!detail?.actions.allowed;
  const completedSteps = Object.values(view.steps).filter((s) => s.status === 'completed').length;
  const origin = detail?.origin ?? null;
  const lineage = useMemo(() => (origin ? [origin] : []), [origin]);

  const ask = {
    cancel: (): Confirmation => ({
      title: `Cancel run ${runId}?`,
      consequence: (
        <p>
          Its sequences stop at the next step boundary and the {completedSteps} completed step{completedSteps === 1 ? '' : 's'} are compensated
          (rolled back) per the workflow's rollback strategy, now. This cannot be undone.
        </p>
      ),
      confirmLabel: 'Cancel the run',
      danger: true,
      run: (reason) => void act('Cancel', () => runs.cancel(runId, reason)),
    }),
    replay: (): Confirmation => ({
      title: `Replay run ${runId}?`,
      consequence: <p>A new run starts with the same input on the same version: every step runs again, with its side effects (charges, emails…).</p>,
      confirmLabel: 'Replay',
      run: (reason) => void act('Replay', () => runs.replay(runId, reason)),
    }),
    restart: (input: Record<string, unknown>): Confirmation => ({
      title: `Restart run ${runId} with this input?`,
      consequence: (
        <>
          <p>A new run starts from the beginning with this input; every step runs again.</p>
          <JsonBlock value={input} />
        </>
      ),
      confirmLabel: 'Restart',
      run: (reason) => void act('Restart', () => runs.restart(runId, input, reason)),
    }),
    resume: (from: { skip?: string[]; checkpoint?: string }): Confirmation => ({
      title: `Resume run ${runId}?`,
      consequence: (
        <p>
          A new run goes on {from.checkpoint ? `from checkpoint ${from.checkpoint}` : 'from where this one failed'}; completed steps are not run again
          {from.skip?.length ? `, and ${from.skip.join(', ')} will be skipped` : ''}.
        </p>
      ),
      confirmLabel: 'Resume',
      run: (reason) => void act('Resume', () => runs.resume(runId, from, reason)),
    }),
    fork: (step: string, outputs: Record<string, unknown>): Confirmation => ({
      title: `Replay run ${runId} from ${step}?`,
      consequence: (
        <p>
          A new run reuses the outputs of the steps before {step}
          {Object.keys(outputs).length ? ` (with your edits to ${Object.keys(outputs).join(', ')})` : ''} and runs {step} and everything after it again.
        </p>
      ),
      confirmLabel: 'Replay from step',
      run: (reason) => void act('Replay from step', () => runs.fork(runId, step, outputs, reason)),
    }),
  };

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
          {formatDuration(durationMs(view.startedAt, view.finishedAt, clock))}
        </span>
      </TopBar>
      <div className="mon-actions toolbar" data-testid="run-actions">
        {canAct ? (
          <>
            {!finished ? (
              <button className="button danger" disabled={busy} data-testid="action-cancel" onClick={() => setConfirm(ask.cancel())}>
                Cancel…
              </button>
            ) : null}
            {spec && Object.keys(spec.signals).length && !finished ? (
              <button className="button" data-testid="action-signal" onClick={() => setPanel(panel === 'signal' ? null : 'signal')}>
                Send signal…
              </button>
            ) : null}
            <button className="button" disabled={busy} data-testid="action-replay" onClick={() => setConfirm(ask.replay())}>
              Replay…
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
        ) : canOperate && detail && !detail.actions.allowed ? (
          <span className="muted small" data-testid="actions-why">
            You can watch this run; {detail.actions.why || 'you cannot act on it.'}
          </span>
        ) : !canOperate ? (
          <span className="muted small">Viewers can watch; operators act on runs.</span>
        ) : null}
        {spec && Object.keys(spec.queries).length ? (
          <button className="button" data-testid="action-query" onClick={() => setPanel(panel === 'query' ? null : 'query')}>
            Query…
          </button>
        ) : null}
        {runsUrl ? (
          <a className="link small" href={runsUrl} data-testid="runs-link">
            All runs
          </a>
        ) : null}
        <Lineage runs={runs} runId={runId} product={product.slug} originKind={detail?.originKind ?? ''} refreshKey={notice} />
        {notice ? <span className="validation-ok small">{notice}</span> : null}
      </div>
      {error ? (
        <div className="alert" role="alert" data-testid="mon-error">
          {error}
        </div>
      ) : null}
      {confirm ? <ConfirmDialog confirm={confirm} busy={busy} onClose={() => setConfirm(null)} /> : null}
      {panel && (canAct || panel === 'query') ? (
        <div className="mon-panel" data-testid={`panel-${panel}`}>
          <ErrorBoundary label={`${panel} panel`} resetKey={panel}>
            {panel === 'signal' && spec ? <SignalPanel spec={spec} busy={busy} onSend={(name, payload) => act(`Signal ${name}`, () => runs.signal(runId, name, payload))} /> : null}
            {panel === 'query' && spec ? <QueryPanel names={Object.keys(spec.queries)} run={(name) => runs.query(runId, name)} /> : null}
            {panel === 'restart' ? (
              <SchemaForm schema={spec?.input ?? {}} initial={view.input ?? {}} submitLabel="Restart with this input" busy={busy} testId="restart-form" onSubmit={(input) => setConfirm(ask.restart(input))} />
            ) : null}
            {panel === 'resume' ? <ResumePanel view={view} busy={busy} onResume={(from) => setConfirm(ask.resume(from))} onFork={(step, outputs) => setConfirm(ask.fork(step, outputs))} /> : null}
          </ErrorBoundary>
        </div>
      ) : null}
      <div className="mon-body">
        <div className="mon-stage">
          <ErrorBoundary label="canvas">
            {spec ? (
              <MonitorCanvas
                spec={spec}
                view={view}
                selected={selected}
                now={clock}
                onSelect={(t) => {
                  setSelected(t);
                  setTab('step');
                }}
              />
            ) : (
              <p className="muted pad">Loading the workflow…</p>
            )}
          </ErrorBoundary>
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
            <ErrorBoundary label={`${tab} tab`} resetKey={`${tab}:${selected ?? ''}`}>
              {tab === 'step' ? <StepInspector view={view} tag={selected} detail={detail} now={clock} /> : null}
              {tab === 'log' ? <LogView view={view} /> : null}
              {tab === 'state' ? <StateView view={view} /> : null}
              {tab === 'timeline' ? (
                <Gantt
                  view={view}
                  now={clock}
                  onSelect={(t) => {
                    setSelected(t);
                    setTab('step');
                  }}
                />
              ) : null}
              {tab === 'compare' ? <ComparePanel runs={runs} runId={runId} product={product.slug} workflow={detail?.workflow ?? ''} lineage={lineage} /> : null}
            </ErrorBoundary>
          </div>
        </aside>
      </div>
    </div>
  );
}

function StateView({ view }: { view: RunView }) {
  return (
    <div data-testid="state-view">
      <h4>State</h4>
      <JsonBlock value={Object.keys(view.state).length ? view.state : null} />
      <h4>Checkpoints</h4>
      {view.checkpoints.length === 0 ? <p className="muted">None.</p> : null}
      {view.checkpoints.map((c, i) => (
        <div key={i} className="mon-checkpoint">
          <strong>{c.name}</strong>{' '}
          <span className="muted small">
            {c.step} · {c.at}
          </span>
          <JsonBlock value={c.data} />
        </div>
      ))}
      <h4>Signals received</h4>
      {view.signals.length === 0 ? <p className="muted">None.</p> : null}
      {view.signals.map((s, i) => (
        <div key={i}>
          <strong>{s.name}</strong>{' '}
          <span className="muted small">
            {s.by ? `by ${s.by} · ` : ''}
            {s.at}
          </span>
          <JsonBlock value={s.payload} />
        </div>
      ))}
    </div>
  );
}
