// Airflow's grid: runs as columns (oldest left, newest right), steps as rows, one coloured
// square per step and run; a click opens that run's monitor at that step.

import type { GridRow, RunRow } from './productRuns';

export function monitorHref(product: string, run: number, step?: string): string {
  const base = `/p/${encodeURIComponent(product)}/runs/${run}/`;
  return step ? `${base}?step=${encodeURIComponent(step)}` : base;
}

export function RunGrid({
  product,
  runs,
  rows,
  cells,
}: {
  product: string;
  runs: RunRow[];
  rows: GridRow[];
  cells: Record<string, Record<string, string>>;
}) {
  const columns = [...runs].reverse();
  const several = new Set(rows.map((r) => r.workflow)).size > 1;
  if (!rows.length) return null;
  return (
    <section className="runs-grid-wrap">
      <table className="runs-grid" data-testid="runs-grid">
        <thead>
          <tr>
            <th className="runs-grid-label">step</th>
            {columns.map((r) => (
              <th key={r.id} title={`#${r.id} ${r.status}`}>
                <a href={monitorHref(product, r.id)} className={`runs-grid-run run-${r.status}`} data-testid={`grid-run-${r.id}`} aria-label={`run ${r.id}`} />
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key}>
              <th className="runs-grid-label" title={row.key}>
                {several ? <span className="muted">{row.workflow} · </span> : null}
                {row.tag}
              </th>
              {columns.map((r) => {
                const status = cells[String(r.id)]?.[row.key];
                return (
                  <td key={r.id}>
                    {status ? (
                      <a
                        href={monitorHref(product, r.id, row.tag)}
                        className={`runs-grid-cell cell-${status}`}
                        title={`#${r.id} · ${row.tag}: ${status}`}
                        data-testid={`grid-cell-${r.id}-${row.tag}`}
                        data-status={status}
                      />
                    ) : null}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
