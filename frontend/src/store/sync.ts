// Keeps a canvas in step with the server: validation as you type (debounced POST validate)
// and autosave of the draft (debounced PUT draft), with the state shown in the toolbar.
// Stale answers (for a spec that has since changed) are dropped.

import type { ValidateResult } from '../api';
import type { WorkflowSpec } from '../lib/spec';
import type { EditorStore } from './editor';

export interface SyncTarget {
  validate(spec: WorkflowSpec, signal: AbortSignal): Promise<ValidateResult>;
  save(spec: WorkflowSpec): Promise<void>;
}

export interface Sync {
  /** Save now (Ctrl+S, before publishing, before leaving). */
  flush(): Promise<boolean>;
  /** Validate now. */
  validateNow(): void;
  stop(): void;
}

export function startSync(
  store: EditorStore,
  target: SyncTarget,
  options: { validateDelay?: number; saveDelay?: number; retryDelay?: number; autosave?: boolean } = {},
): Sync {
  const validateDelay = options.validateDelay ?? 300;
  const saveDelay = options.saveDelay ?? 800;
  const retryDelay = options.retryDelay ?? 5000;
  const autosave = options.autosave ?? true;
  let validateTimer: ReturnType<typeof setTimeout> | undefined;
  let saveTimer: ReturnType<typeof setTimeout> | undefined;
  let inflight: AbortController | null = null;
  let saving: Promise<boolean> | null = null;
  let savedRevision = store.getState().revision;
  let stopped = false;

  const validate = async (): Promise<void> => {
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    const { spec, revision } = store.getState();
    store.getState().setValidation('pending');
    try {
      const result = await target.validate(spec, controller.signal);
      if (stopped || controller.signal.aborted || store.getState().revision !== revision) return;
      store.getState().setIssues(result.issues, result.ok ? 'ok' : 'invalid');
    } catch (e) {
      if (stopped || controller.signal.aborted) return;
      store.getState().setValidation('error');
      console.warn('validation failed', e);
    } finally {
      if (inflight === controller) inflight = null;
    }
  };

  const save = (): Promise<boolean> => {
    if (saving) {
      // One save at a time; the edit that arrived meanwhile is saved right after.
      return saving.then(() => save());
    }
    const { spec, revision, readOnly } = store.getState();
    if (readOnly || revision === savedRevision) return Promise.resolve(true);
    store.getState().setSave('saving');
    saving = target
      .save(spec)
      .then(() => {
        savedRevision = revision;
        if (!stopped) store.getState().setSave(store.getState().revision === revision ? 'saved' : 'unsaved');
        return true;
      })
      .catch((e: unknown) => {
        if (!stopped) {
          store.getState().setSave('error', e instanceof Error ? e.message : String(e));
          // A refused spec (4xx) waits for the next edit; a network or server error retries.
          const status = (e as { status?: unknown }).status;
          const refused = typeof status === 'number' && status >= 400 && status < 500;
          clearTimeout(saveTimer);
          if (!refused) saveTimer = setTimeout(() => void save(), retryDelay);
        }
        return false;
      })
      .finally(() => {
        saving = null;
        if (!stopped && autosave && store.getState().revision !== savedRevision && store.getState().save !== 'error') {
          // Edits arrived during the save: save again.
          scheduleSave();
        }
      });
    return saving;
  };

  const scheduleSave = (): void => {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => void save(), saveDelay);
  };

  const scheduleValidate = (): void => {
    clearTimeout(validateTimer);
    validateTimer = setTimeout(() => void validate(), validateDelay);
  };

  const unsubscribe = store.subscribe((state, prev) => {
    if (state.revision === prev.revision) return;
    scheduleValidate();
    if (autosave && !state.readOnly) scheduleSave();
  });

  void validate();

  return {
    flush: () => {
      clearTimeout(saveTimer);
      return save();
    },
    validateNow: () => {
      clearTimeout(validateTimer);
      void validate();
    },
    stop: () => {
      stopped = true;
      clearTimeout(saveTimer);
      clearTimeout(validateTimer);
      inflight?.abort();
      unsubscribe();
    },
  };
}
