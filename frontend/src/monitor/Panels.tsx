// The run monitor's side panels: the log, sending a signal, asking a query, and resuming
// or replaying from a step (the action itself is confirmed by the page).

import { useEffect, useRef, useState } from 'react';

import type { WorkflowSpec } from '../lib/spec';
import type { RunView } from './model';
import { SchemaForm } from './SchemaForm';

export function JsonBlock({ value, testId }: { value: unknown; testId?: string }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  return (
    <pre className="mon-json mono" data-testid={testId}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function rec(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function LogView({ view }: { view: RunView }) {
  const end = useRef<HTMLDivElement>(null);
  // A block body: Chromium's scrollIntoView returns a Promise, and an effect must return
  // nothing or a cleanup function (React calls whatever it returns when the tab closes).
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: 'end' });
  }, [view.log.length]);
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

export function SignalPanel({ spec, busy, onSend }: { spec: WorkflowSpec; busy: boolean; onSend(name: string, payload: Record<string, unknown>): void }) {
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

export function QueryPanel({ names, run }: { names: string[]; run(name: string): Promise<unknown> }) {
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

export function ResumePanel({ view, busy, onResume, onFork }: { view: RunView; busy: boolean; onResume(from: { skip?: string[]; checkpoint?: string }): void; onFork(step: string, outputs: Record<string, unknown>): void }) {
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
