// Compare this run with another of the same workflow, picked from a list (its lineage
// first): the input, output and per-step output differences the server computes.

import { useEffect, useState } from 'react';

import type { JsonChange, RunComparison, RunSummary, RunsApi } from './runsApi';

function short(value: unknown): string {
  if (value === null || value === undefined) return '—';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function Changes({ changes, testId }: { changes: JsonChange[]; testId: string }) {
  if (!changes.length) return <p className="muted small" data-testid={testId}>No difference.</p>;
  return (
    <table className="table small mon-changes" data-testid={testId}>
      <tbody>
        {changes.map((c) => (
          <tr key={c.path} className={`change-${c.change}`}>
            <td className="mono">{c.path}</td>
            <td className="mono">{short(c.a)}</td>
            <td className="mono">{short(c.b)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ComparePanel({ runs, runId, product, workflow, lineage }: { runs: RunsApi; runId: number; product: string; workflow: string; lineage: number[] }) {
  const [choices, setChoices] = useState<RunSummary[] | null>(null);
  const [other, setOther] = useState('');
  const [result, setResult] = useState<RunComparison | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    if (!workflow) return;
    let live = true;
    runs.list(product, workflow, { limit: 200 }).then(
      (list) => {
        if (!live) return;
        const others = list.filter((r) => r.id !== runId);
        // Runs of this run's lineage first: the usual question is "what did the replay change?".
        others.sort((a, b) => Number(lineage.includes(b.id)) - Number(lineage.includes(a.id)) || b.id - a.id);
        setChoices(others);
        setOther((cur) => cur || (others[0] ? String(others[0].id) : ''));
      },
      (e: unknown) => live && setError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      live = false;
    };
  }, [runs, product, workflow, runId, lineage]);

  const load = async () => {
    setError('');
    setResult(null);
    try {
      setResult(await runs.compare(runId, Number(other)));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  return (
    <div data-testid="compare-view">
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (other) void load();
        }}
      >
        <select value={other} onChange={(e) => setOther(e.target.value)} aria-label="Other run" data-testid="compare-pick" disabled={!choices?.length}>
          {(choices ?? []).map((r) => (
            <option key={r.id} value={r.id}>
              #{r.id} · {r.status} · {r.environment}
              {r.version !== null ? ` · v${r.version}` : ''}
              {lineage.includes(r.id) ? ' · lineage' : ''}
              {r.createdAt ? ` · ${new Date(r.createdAt).toLocaleString()}` : ''}
            </option>
          ))}
        </select>
        <button className="button" type="submit" disabled={!other} data-testid="compare-go">
          Compare
        </button>
      </form>
      {choices && !choices.length ? <p className="muted">No other run of this workflow to compare with.</p> : null}
      {error ? <div className="alert">{error}</div> : null}
      {result ? (
        <>
          <p className="small muted">
            run {result.a.id} ({result.a.status}, v{result.a.version}) → run {result.b.id} ({result.b.status}, v{result.b.version})
          </p>
          <h4>Input</h4>
          <Changes changes={result.inputDiff} testId="compare-input" />
          <h4>Output</h4>
          <Changes changes={result.outputDiff} testId="compare-output" />
          <h4>Steps</h4>
          <table className="table small" data-testid="compare-table">
            <thead>
              <tr>
                <th>step</th>
                <th>run {result.a.id}</th>
                <th>run {result.b.id}</th>
              </tr>
            </thead>
            <tbody>
              {result.steps.map((s) => (
                <tr key={s.tag} className={s.sameStatus && s.sameOutput ? '' : 'mon-diff'} data-testid={`compare-step-${s.tag}`}>
                  <td>{s.tag}</td>
                  <td>{s.a?.status ?? '—'}</td>
                  <td>
                    {s.b?.status ?? '—'}
                    {s.outputDiff.length ? (
                      <ul className="mon-step-diff mono" data-testid={`compare-diff-${s.tag}`}>
                        {s.outputDiff.map((c) => (
                          <li key={c.path}>
                            {c.path}: {short(c.a)} → {short(c.b)}
                          </li>
                        ))}
                      </ul>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
