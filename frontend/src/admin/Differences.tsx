// Differences as tables: spec changes (by path) and component configuration differences
// (values shown, secret-looking keys masked by the server; secrets by name only).
import { secretState, short, type Change, type ConfigDiff } from './lib';

export function ChangeList({ changes, testId, empty = 'No differences.' }: { changes: Change[]; testId?: string; empty?: string }) {
  if (!changes.length) return <p className="muted small" data-testid={testId}>{empty}</p>;
  return (
    <table className="table compact" data-testid={testId}>
      <thead>
        <tr>
          <th>Path</th>
          <th>Change</th>
          <th>Before</th>
          <th>After</th>
        </tr>
      </thead>
      <tbody>
        {changes.map((c) => (
          <tr key={`${c.path}:${c.change}`}>
            <td className="mono">{c.path}</td>
            <td>
              <span className={`change-chip ${c.change}`}>{c.change}</span>
            </td>
            <td className="mono muted">{short(c.before)}</td>
            <td className="mono">{short(c.after)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ConfigDiffList({ diffs, a, b, testId }: { diffs: ConfigDiff[]; a: string; b: string; testId?: string }) {
  if (!diffs.length) return <p className="muted small" data-testid={testId}>Component configuration is the same in {a} and {b}.</p>;
  return (
    <div className="config-diffs" data-testid={testId}>
      {diffs.map((d) => {
        const rows = [
          ...d.config.map((c) => ({ section: 'config', ...c })),
          ...d.variables.map((c) => ({ section: 'variables', ...c })),
          ...d.constants.map((c) => ({ section: 'constants', ...c })),
        ];
        return (
          <div key={d.component} className="config-diff" data-testid={`config-diff-${d.component}`}>
            <div className="config-diff-head">
              <strong>{d.component}</strong> <span className="muted small">{d.kind}</span>
              {!d.configuredInA ? <span className="warn-chip">not configured in {a}</span> : null}
              {!d.configuredInB ? <span className="warn-chip">not configured in {b}</span> : null}
            </div>
            {rows.length ? (
              <table className="table compact">
                <thead>
                  <tr>
                    <th>Setting</th>
                    <th>{a}</th>
                    <th>{b}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={`${r.section}:${r.path}`}>
                      <td className="mono">
                        <span className="muted">{r.section}.</span>
                        {r.path}
                      </td>
                      <td className="mono">{short(r.before)}</td>
                      <td className="mono">{short(r.after)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null}
            {d.secrets.length ? (
              <ul className="secret-diffs">
                {d.secrets.map((s) => (
                  <li key={s.name}>
                    <span className="mono">secret {s.name}</span>: {secretState(s, a, b)}
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}
