// The run monitor's shell. The live engineer fills this page: subscribe to the run's journal
// and call `store.getState().setStepStatus({stepTag: status})` on a read-only canvas store —
// the cards then show a status dot and colour per event (see SequenceNode's status-* classes).

import { ReactFlowProvider } from '@xyflow/react';
import { useEffect, useState } from 'react';

import { useApi, useBootstrap } from '../appContext';
import { Canvas } from '../components/Canvas';
import { TopBar } from '../components/Shell';
import { parseSpec } from '../lib/spec';
import { EditorContext } from '../store/context';
import { createEditorStore, type EditorStore } from '../store/editor';

export function RunMonitorPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const runId = boot.run!.id;
  const [store, setStore] = useState<EditorStore | null>(null);
  const [info, setInfo] = useState<{ status: string; workflow: string } | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    api
      .request('GET', `/runs/${encodeURIComponent(runId)}`)
      .then((raw) => {
        const run = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
        const spec = parseSpec((run.spec ?? (run.version as Record<string, unknown> | undefined)?.spec ?? null) as unknown);
        const s = createEditorStore({ spec, readOnly: true });
        const statuses: Record<string, string> = {};
        if (Array.isArray(run.steps)) {
          for (const step of run.steps as Record<string, unknown>[]) {
            if (typeof step.tag === 'string' && typeof step.status === 'string') statuses[step.tag] = step.status;
          }
        }
        s.getState().setStepStatus(statuses);
        setStore(s);
        setInfo({ status: String(run.status ?? ''), workflow: String(run.workflow ?? '') });
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [api, runId]);

  return (
    <div className="page editor-page">
      <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name, href: `/p/${product.slug}/` }, { label: `Run ${runId}` }]}>
        {info ? <span className={`badge run-${info.status}`}>{info.status}</span> : null}
      </TopBar>
      <div className="workspace readonly" data-testid="run-monitor" data-run={runId}>
        {error ? <div className="alert">{error}</div> : null}
        {store ? (
          <div className="stage">
            <EditorContext.Provider value={store}>
              <ReactFlowProvider>
                <Canvas />
              </ReactFlowProvider>
            </EditorContext.Provider>
          </div>
        ) : null}
      </div>
    </div>
  );
}
