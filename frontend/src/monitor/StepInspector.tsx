// The step tab: what a step got and returned, its attempts, why it did not finish (the
// run ended first), and its compensation — the rollback call's own input and output.

import { useMemo } from 'react';

import { durationMs, formatDuration, stepLabel, type RunView } from './model';
import { JsonBlock, rec } from './Panels';
import type { RunDetail } from './runsApi';

// An attempt the run's end cut short has no status of its own: it shares its step's.
const ENDED = new Set(['cancelled', 'not_run']);

const ROLLBACK_LABEL: Record<string, string> = {
  completed: 'rolled back',
  rolled_back: 'rolled back',
  running: 'rolling back',
  retrying: 'retrying the rollback',
  failed: 'rollback failed',
};

export function StepInspector({ view, tag, detail, now }: { view: RunView; tag: string | null; detail: RunDetail | null; now: number }) {
  const step = tag ? view.steps[tag] : undefined;
  const restStep = useMemo(() => {
    const steps = Array.isArray(detail?.raw.steps) ? (detail!.raw.steps as unknown[]) : [];
    return steps.map(rec).find((s) => s.tag === tag) ?? null;
  }, [detail, tag]);
  if (!step) {
    return (
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
    );
  }
  const attempts = Array.isArray(restStep?.attempts)
    ? (restStep!.attempts as unknown[]).map(rec)
    : step.attempts.map((a) => ({ n: a.n, status: a.status, started_at: a.startedAt, finished_at: a.finishedAt, error: a.error }));
  const rollback = step.rollback || (typeof restStep?.rollback_status === 'string' ? restStep.rollback_status : '');
  return (
    <div data-testid="step-inspector">
      <h3>
        {step.tag}{' '}
        <span className={`badge run-${step.status}`} data-testid="step-status">
          {stepLabel(step)}
        </span>
      </h3>
      <p className="muted small">
        {step.sequence ? `sequence ${step.sequence} · ` : ''}
        attempt {step.attempt}
        {step.maxAttempts ? ` of ${step.maxAttempts}` : ''} · {formatDuration(durationMs(step.startedAt, step.finishedAt, now))}
      </p>
      {step.why ? (
        <p className="small" data-testid="step-why">
          {step.why}
        </p>
      ) : null}
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
      {rollback ? (
        <section className="mon-compensation" data-testid="step-compensation">
          <h4>
            Compensation <span className={`badge run-${rollback === 'failed' ? 'failed' : 'rolled_back'}`}>{ROLLBACK_LABEL[rollback] ?? rollback}</span>
          </h4>
          <h5>Rollback input</h5>
          <JsonBlock value={step.rollbackInput} testId="rollback-input" />
          <h5>Rollback output</h5>
          <JsonBlock value={step.rollbackOutput} testId="rollback-output" />
          {step.rollbackError !== null || restStep?.rollback_error ? (
            <>
              <h5>Rollback error</h5>
              <JsonBlock value={step.rollbackError ?? restStep?.rollback_error} testId="rollback-error" />
            </>
          ) : null}
        </section>
      ) : null}
      <h4>Attempts</h4>
      <table className="table mon-attempts">
        <tbody>
          {attempts.map((a, i) => (
            <tr key={i}>
              <td>#{String(a.n ?? i + 1)}</td>
              <td>{String(a.status ?? '') || (i === attempts.length - 1 && !a.finished_at && ENDED.has(step.status) ? step.status : '')}</td>
              <td>{formatDuration(durationMs(typeof a.started_at === 'string' ? a.started_at : null, typeof a.finished_at === 'string' ? a.finished_at : null, now))}</td>
              <td className="mono small">{a.error ? JSON.stringify(a.error).slice(0, 120) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
