// Lineage both ways: the run this one was made from (replay, restart, resume, fork — and
// where that one came from) and the runs made from it, each a link to its monitor.

import { useEffect, useState } from 'react';

import type { RunRelated, RunsApi } from './runsApi';

const KIND: Record<string, string> = { replay: 'replay', restart: 'restart', resume: 'resume', fork: 'fork', replay_from_step: 'fork' };

function kindOf(kind: string): string {
  return KIND[kind] ?? (kind || 'derived');
}

export function Lineage({ runs, runId, product, originKind, refreshKey }: { runs: RunsApi; runId: number; product: string; originKind: string; refreshKey: string }) {
  const [related, setRelated] = useState<RunRelated | null>(null);
  useEffect(() => {
    let live = true;
    runs.related(runId).then(
      (r) => {
        if (live) setRelated(r);
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [runs, runId, refreshKey]);
  if (!related || (!related.origins.length && !related.derived.length && !related.parent.length)) return null;
  const href = (id: number) => `/p/${product}/runs/${id}/`;
  const origin = related.origins[0];
  return (
    <div className="mon-lineage small" data-testid="lineage">
      {origin ? (
        <span>
          {kindOf(originKind)} of{' '}
          <a className="link" href={href(origin.id)} data-testid="lineage-origin">
            #{origin.id}
          </a>
          {related.origins.length > 1 ? (
            <span className="muted">
              {' '}
              (from{' '}
              {related.origins.slice(1).map((o, i) => (
                <span key={o.id}>
                  {i ? ', ' : ''}
                  <a className="link" href={href(o.id)}>
                    #{o.id}
                  </a>
                </span>
              ))}
              )
            </span>
          ) : null}
        </span>
      ) : null}
      {related.parent.map((p) => (
        <span key={p.id}>
          child of{' '}
          <a className="link" href={href(p.id)} data-testid="lineage-parent">
            #{p.id}
          </a>
        </span>
      ))}
      {related.derived.length ? (
        <span>
          made from it:{' '}
          {related.derived.map((d, i) => (
            <span key={d.id}>
              {i ? ', ' : ''}
              <a className="link" href={href(d.id)} data-testid={`lineage-derived-${d.id}`}>
                #{d.id}
              </a>{' '}
              <span className="muted">
                ({kindOf(d.originKind)}, {d.status})
              </span>
            </span>
          ))}
        </span>
      ) : null}
    </div>
  );
}
