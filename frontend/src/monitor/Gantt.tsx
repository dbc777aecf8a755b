// The run's steps on a time axis: one bar per started step, from its first start to its end.

import { formatDuration, timeline, type RunView } from './model';

export function Gantt({ view, now, onSelect }: { view: RunView; now: number; onSelect(tag: string): void }) {
  const rows = timeline(view, now);
  if (rows.length === 0) return <p className="muted pad">No step has started yet.</p>;
  const total = Math.max(1, ...rows.map((r) => r.end));
  return (
    <div className="mon-gantt" data-testid="mon-gantt">
      <div className="mon-gantt-axis">
        <span>0</span>
        <span>{formatDuration(total)}</span>
      </div>
      {rows.map((r) => (
        <div key={r.tag} className="mon-gantt-row" onClick={() => onSelect(r.tag)} data-testid={`gantt-${r.tag}`}>
          <span className="mon-gantt-label">{r.tag}</span>
          <span className="mon-gantt-track">
            <span
              className={`mon-gantt-bar status-${r.status}`}
              style={{ left: `${(100 * r.start) / total}%`, width: `${Math.max(0.5, (100 * (r.end - r.start)) / total)}%` }}
              title={`${r.tag}: ${formatDuration(r.end - r.start)} (${r.status})`}
            />
          </span>
          <span className="mon-gantt-time">{formatDuration(r.end - r.start)}</span>
        </div>
      ))}
    </div>
  );
}
