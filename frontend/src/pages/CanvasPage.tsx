// The designer: palette | canvas | inspector, with the toolbar on top. Loads the draft (or
// the latest version), validates as you type, autosaves the draft, publishes, and compares
// versions. Code-defined workflows open read-only.

import { ReactFlowProvider } from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { ApiError, type VersionSummary, type WorkflowDetail } from '../api';
import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { Canvas } from '../components/Canvas';
import { CatalogContext } from '../components/catalogContext';
import { DiffView, type DiffSide } from '../components/DiffView';
import { Icon } from '../components/Icon';
import { Inspector } from '../components/Inspector';
import { IssuesPanel } from '../components/IssuesPanel';
import { Palette } from '../components/Palette';
import { TopBar } from '../components/Shell';
import { VersionsPanel } from '../components/VersionsPanel';
import { parseComponents, type ComponentInfo } from '../lib/catalog';
import { elkLayout } from '../lib/elk';
import { emptySpec, parseSpec, type Json, type SequenceSpec, type WorkflowSpec } from '../lib/spec';
import { EditorContext, useEditor, useEditorStore } from '../store/context';
import { createEditorStore, type Clipboard, type EditorStore } from '../store/editor';
import { startSync, type Sync } from '../store/sync';

const CLIPBOARD_KEY = 'trellis.clipboard';

function readClipboard(): Clipboard | null {
  try {
    const raw: unknown = JSON.parse(localStorage.getItem(CLIPBOARD_KEY) ?? 'null');
    if (!raw || typeof raw !== 'object') return null;
    const c = raw as Partial<Clipboard>;
    // Re-check the shape through the spec parser: the clipboard may come from another tab.
    const sequences = Array.isArray(c.sequences) ? parseSpec({ sequences: c.sequences }).sequences : [];
    const event = c.event ? (parseSpec({ sequences: [{ tag: 'x', events: [c.event] }] }).sequences[0]?.events[0] ?? null) : null;
    return { sequences: sequences as SequenceSpec[], positions: c.positions ?? {}, event };
  } catch {
    return null;
  }
}

function SaveIndicator({ onRetry }: { onRetry(): void }) {
  const save = useEditor((s) => s.save);
  const error = useEditor((s) => s.saveError);
  const readOnly = useEditor((s) => s.readOnly);
  if (readOnly) return null;
  const label = { saved: 'Saved', saving: 'Saving…', unsaved: 'Unsaved', error: 'Save failed' }[save];
  return (
    <button type="button" className={`pill save-${save}`} data-testid="save-state" data-state={save} title={error || 'Draft autosaves as you edit (Ctrl+S saves now)'} onClick={onRetry}>
      <span className="dot" /> {label}
    </button>
  );
}

function ValidationIndicator() {
  const validation = useEditor((s) => s.validation);
  const count = useEditor((s) => s.issues.length);
  const label =
    validation === 'pending'
      ? 'Checking…'
      : validation === 'ok'
        ? 'Valid'
        : validation === 'invalid'
          ? `${count} problem${count === 1 ? '' : 's'}`
          : validation === 'error'
            ? 'Cannot validate'
            : '';
  if (!label) return null;
  return (
    <span className={`pill validation-${validation}`} data-testid="validation-state" data-state={validation}>
      <Icon name={validation === 'ok' ? 'check' : 'alert'} size={12} /> {label}
    </span>
  );
}

function RecordingBadges({ recording }: { recording: WorkflowSpec['recording'] }) {
  if (!recording) return null;
  const entries = Object.entries(recording).filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0));
  return (
    <span className="recording-badges" data-testid="recording-badges">
      {entries.map(([k, v]) => (
        <span key={k} className="badge recording" title={JSON.stringify(v as Json, null, 2)} data-testid={`recording-${k}`}>
          {k}
        </span>
      ))}
    </span>
  );
}

function Toolbar({ onPublish, onVersions, canPublishRole, sync }: { onPublish(): void; onVersions(): void; canPublishRole: boolean; sync: Sync }) {
  const store = useEditorStore();
  const canUndo = useEditor((s) => s.past.length > 0 && !s.readOnly);
  const canRedo = useEditor((s) => s.future.length > 0 && !s.readOnly);
  const readOnly = useEditor((s) => s.readOnly);
  const direction = useEditor((s) => s.spec.layout.direction);
  const validation = useEditor((s) => s.validation);
  const issues = useEditor((s) => s.issues.length);
  const empty = useEditor((s) => s.spec.sequences.length === 0);
  const [laying, setLaying] = useState(false);
  const publishBlocked = readOnly || !canPublishRole || issues > 0 || validation !== 'ok' || empty;
  const why = readOnly
    ? 'Read-only'
    : !canPublishRole
      ? 'Publishing needs the designer role'
      : empty
        ? 'Add a sequence first'
        : issues > 0
          ? 'Fix the problems first'
          : validation !== 'ok'
            ? 'Waiting for validation'
            : 'Publish a new version';

  const autoLayout = async () => {
    setLaying(true);
    try {
      const s = store.getState();
      s.applyPositions(await elkLayout(s.spec, s.spec.layout.direction));
    } finally {
      setLaying(false);
    }
  };

  return (
    <div className="toolbar" role="toolbar">
      <div className="tool-group">
        <button type="button" className="icon-button" disabled={!canUndo} onClick={() => store.getState().undo()} title="Undo (Ctrl+Z)" data-testid="undo">
          <Icon name="undo" />
        </button>
        <button type="button" className="icon-button" disabled={!canRedo} onClick={() => store.getState().redo()} title="Redo (Ctrl+Shift+Z)" data-testid="redo">
          <Icon name="redo" />
        </button>
      </div>
      <div className="tool-group">
        <button type="button" className="icon-button" onClick={() => store.getState().resetLayout()} title={readOnly ? 'Arrange by level' : 'Arrange by level (forget manual positions)'} data-testid="layout-levels" disabled={readOnly}>
          <Icon name="layout" />
        </button>
        <button type="button" className="icon-button" onClick={() => void autoLayout()} disabled={laying} title="Auto layout (ELK)" data-testid="layout-elk">
          <Icon name="sparkle" />
        </button>
        <button
          type="button"
          className="icon-button"
          onClick={() => store.getState().setDirection(direction === 'LR' ? 'TB' : 'LR')}
          disabled={readOnly}
          title={direction === 'LR' ? 'Levels as rows (top to bottom)' : 'Levels as columns (left to right)'}
          data-testid="layout-direction"
        >
          <Icon name={direction === 'LR' ? 'columns' : 'rows'} />
        </button>
        <button type="button" className="icon-button" onClick={() => store.getState().requestFit()} title="Fit view" data-testid="fit-view">
          <Icon name="fit" />
        </button>
      </div>
      <div className="tool-group status">
        <ValidationIndicator />
        <SaveIndicator onRetry={() => void sync.flush()} />
      </div>
      <div className="tool-group">
        <button type="button" className="button ghost" onClick={onVersions} data-testid="versions-button">
          <Icon name="history" size={14} /> Versions
        </button>
        {!readOnly ? (
          <button type="button" className="button primary" disabled={publishBlocked} title={why} onClick={onPublish} data-testid="publish">
            <Icon name="upload" size={14} /> Publish
          </button>
        ) : null}
      </div>
    </div>
  );
}

function PublishDialog({ onCancel, onConfirm, busy, error }: { onCancel(): void; onConfirm(note: string): void; busy: boolean; error: string }) {
  const [note, setNote] = useState('');
  return (
    <div className="modal-backdrop" onMouseDown={onCancel}>
      <form
        className="modal"
        onMouseDown={(e) => e.stopPropagation()}
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm(note);
        }}
        data-testid="publish-dialog"
      >
        <h2>Publish a new version</h2>
        <p className="muted">The spec is compiled again on the server; published versions never change.</p>
        <label className="field">
          <span className="field-label">Note (optional)</span>
          <input autoFocus value={note} onChange={(e) => setNote(e.target.value)} placeholder="What changed?" maxLength={500} data-testid="publish-note" />
        </label>
        {error ? <div className="alert">{error}</div> : null}
        <div className="form-actions">
          <button type="submit" className="button primary" disabled={busy} data-testid="publish-confirm">
            {busy ? 'Publishing…' : 'Publish'}
          </button>
          <button type="button" className="button ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}

function useShortcuts(store: EditorStore, sync: Sync, blocked: boolean) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (blocked) return;
      const target = e.target as HTMLElement | null;
      const typing = !!target?.closest('input, textarea, select, [contenteditable="true"]');
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      const s = store.getState();
      if (mod && key === 's') {
        e.preventDefault();
        void sync.flush();
        return;
      }
      if (typing) {
        if (key === 'escape') target?.blur();
        return;
      }
      if (mod && key === 'z' && !e.shiftKey) {
        e.preventDefault();
        s.undo();
      } else if (mod && ((key === 'z' && e.shiftKey) || key === 'y')) {
        e.preventDefault();
        s.redo();
      } else if (mod && key === 'c') {
        const clip = s.copy();
        if (clip) localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clip));
      } else if (mod && key === 'x') {
        const clip = s.copy();
        if (clip) {
          localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clip));
          s.deleteSelection();
        }
      } else if (mod && key === 'v') {
        e.preventDefault();
        s.paste(readClipboard() ?? s.clipboard);
      } else if (mod && key === 'a') {
        e.preventDefault();
        s.selectAll();
      } else if (key === 'delete' || key === 'backspace') {
        e.preventDefault();
        s.deleteSelection();
      } else if (key === 'escape') {
        s.clearSelection();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [store, sync, blocked]);
}

interface Toast {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}

function Editor({ workflow, store, readOnly }: { workflow: WorkflowDetail; store: EditorStore; readOnly: boolean }) {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  // Started in an effect (not a memo) so StrictMode's mount/unmount/mount leaves one live
  // sync; the stable facade below forwards to whichever is current.
  const syncRef = useRef<Sync | null>(null);
  useEffect(() => {
    const live = startSync(
      store,
      {
        validate: (spec, signal) => api.validate(product.slug, workflow.tag, spec, signal),
        save: (spec) => api.saveDraft(product.slug, workflow.tag, spec),
      },
      { autosave: !readOnly },
    );
    syncRef.current = live;
    return () => {
      live.stop();
      if (syncRef.current === live) syncRef.current = null;
    };
  }, [api, store, product.slug, workflow.tag, readOnly]);
  const sync: Sync = useMemo(
    () => ({
      flush: () => syncRef.current?.flush() ?? Promise.resolve(true),
      validateNow: () => syncRef.current?.validateNow(),
      stop: () => undefined,
    }),
    [],
  );

  const [panel, setPanel] = useState<'inspect' | 'versions'>('inspect');
  const [versions, setVersions] = useState<VersionSummary[]>([]);
  const [versionsLoading, setVersionsLoading] = useState(true);
  const [diff, setDiff] = useState<{ left: DiffSide; right: DiffSide } | null>(null);
  const [publishing, setPublishing] = useState<{ busy: boolean; error: string } | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const toastId = useRef(0);
  const spec = useEditor((s) => s.spec);

  const toast = useCallback((text: string, kind: Toast['kind'] = 'ok') => {
    const id = ++toastId.current;
    setToasts((t) => [...t, { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 4000);
  }, []);

  const loadVersions = useCallback(async () => {
    setVersionsLoading(true);
    try {
      setVersions(await api.versions(product.slug, workflow.tag));
    } catch {
      setVersions([]);
    } finally {
      setVersionsLoading(false);
    }
  }, [api, product.slug, workflow.tag]);

  useEffect(() => {
    void loadVersions();
  }, [loadVersions]);

  useShortcuts(store, sync, !!diff || !!publishing);

  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      const save = store.getState().save;
      if (save === 'unsaved' || save === 'saving' || save === 'error') {
        void sync.flush();
        e.preventDefault();
      }
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [store, sync]);

  useEffect(() => {
    if (!diff) return;
    const close = (e: KeyboardEvent) => e.key === 'Escape' && setDiff(null);
    window.addEventListener('keydown', close);
    return () => window.removeEventListener('keydown', close);
  }, [diff]);

  const publish = async (note: string) => {
    setPublishing({ busy: true, error: '' });
    try {
      await sync.flush();
      const v = await api.publish(product.slug, workflow.tag, store.getState().spec, note);
      setPublishing(null);
      toast(v.unchanged ? `Nothing changed since v${v.number}` : `Published v${v.number}`);
      void loadVersions();
    } catch (e) {
      if (e instanceof ApiError && e.issues.length) {
        store.getState().setIssues(e.issues, 'invalid');
        setPublishing(null);
        toast(`Not published: ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}`, 'error');
      } else {
        setPublishing({ busy: false, error: e instanceof Error ? e.message : String(e) });
      }
    }
  };

  const specOf = async (v: number | 'draft'): Promise<DiffSide> =>
    v === 'draft' ? { label: 'Draft', spec: store.getState().spec } : { label: `v${v}`, spec: (await api.version(product.slug, workflow.tag, v)).spec };

  const compare = async (a: number | 'draft', b: number | 'draft') => {
    try {
      const [left, right] = await Promise.all([specOf(a), specOf(b)]);
      setDiff({ left, right });
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
    }
  };

  const restore = async (n: number) => {
    try {
      const v = await api.version(product.slug, workflow.tag, n);
      store.getState().commit(v.spec);
      store.getState().requestFit();
      toast(`Draft replaced by v${n} (Ctrl+Z to undo)`);
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
    }
  };

  const canPublishRole = roleAtLeast(product.role, 'designer');

  return (
    <div className="page editor-page">
      <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name, href: `/p/${encodeURIComponent(product.slug)}/` }, { label: workflow.name }]}>
        <span className={`source-badge ${workflow.source}`}>{workflow.source}</span>
        {readOnly ? (
          <span className="badge readonly" data-testid="readonly-badge" title={workflow.source === 'code' ? 'Defined in Python: change it in code' : 'You can view this workflow'}>
            <Icon name="lock" size={12} /> read-only
          </span>
        ) : null}
        <RecordingBadges recording={spec.recording} />
      </TopBar>
      <Toolbar onPublish={() => setPublishing({ busy: false, error: '' })} onVersions={() => setPanel(panel === 'versions' ? 'inspect' : 'versions')} canPublishRole={canPublishRole} sync={sync} />
      <div className={`workspace${readOnly ? ' readonly' : ''}`}>
        {!readOnly ? <Palette /> : null}
        <div className="stage">
          <Canvas announceReady />
          <IssuesPanel />
        </div>
        <aside className="inspector" data-testid="inspector">
          {panel === 'versions' ? (
            <VersionsPanel versions={versions} loading={versionsLoading} readOnly={readOnly} onCompare={(a, b) => void compare(a, b)} onRestore={(n) => void restore(n)} onClose={() => setPanel('inspect')} />
          ) : (
            <Inspector />
          )}
        </aside>
      </div>
      {publishing ? <PublishDialog busy={publishing.busy} error={publishing.error} onCancel={() => setPublishing(null)} onConfirm={(note) => void publish(note)} /> : null}
      {diff ? <DiffView left={diff.left} right={diff.right} onClose={() => setDiff(null)} /> : null}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast ${t.kind}`} data-testid="toast">
            {t.text}
          </div>
        ))}
      </div>
    </div>
  );
}

export function CanvasPage() {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product!;
  const tag = boot.workflow!.tag;
  const [state, setState] = useState<{ workflow: WorkflowDetail; store: EditorStore; readOnly: boolean } | null>(null);
  const [components, setComponents] = useState<ComponentInfo[]>([]);
  const [error, setError] = useState('');

  useEffect(() => {
    let cancelled = false;
    (async () => {
      const [workflow, comps] = await Promise.all([api.workflow(product.slug, tag), api.components(product.slug).catch(() => [])]);
      let spec = workflow.draft;
      if (!spec) spec = await api.draft(product.slug, tag);
      if (!spec && workflow.latestVersion) spec = (await api.version(product.slug, tag, workflow.latestVersion)).spec;
      const readOnly = workflow.source === 'code' || !roleAtLeast(product.role, 'designer');
      if (cancelled) return;
      setComponents(parseComponents(comps));
      setState({ workflow, store: createEditorStore({ spec: spec ?? emptySpec(), readOnly }), readOnly });
    })().catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
    };
  }, [api, product.slug, product.role, tag]);

  if (error) {
    return (
      <div className="page">
        <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name, href: `/p/${product.slug}/` }, { label: tag }]} />
        <main className="content">
          <div className="alert">{error}</div>
        </main>
      </div>
    );
  }
  if (!state) return <div className="loading-screen">Loading {tag}…</div>;
  return (
    <CatalogContext.Provider value={components}>
      <EditorContext.Provider value={state.store}>
        <ReactFlowProvider>
          <Editor workflow={state.workflow} store={state.store} readOnly={state.readOnly} />
        </ReactFlowProvider>
      </EditorContext.Provider>
    </CatalogContext.Provider>
  );
}
