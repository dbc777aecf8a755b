import { describe, expect, it } from 'vitest';

import { ev, seq, spec } from '../lib/__tests__/fixtures';
import type { WorkflowSpec } from '../lib/spec';
import { createEditorStore } from './editor';
import { startSync } from './sync';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sync', () => {
  it('validates on start and after edits, and autosaves the latest spec once', async () => {
    const store = createEditorStore({ spec: spec([seq('a', [], [ev('x')])]) });
    const saved: WorkflowSpec[] = [];
    const validated: number[] = [];
    const sync = startSync(
      store,
      {
        validate: async (s) => {
          validated.push(s.sequences.length);
          return s.sequences.length > 1
            ? { ok: false, issues: [{ path: 'sequences[1].tag', message: 'bad' }], levels: null }
            : { ok: true, issues: [], levels: null };
        },
        save: async (s) => {
          saved.push(s);
        },
      },
      { validateDelay: 5, saveDelay: 10 },
    );
    await tick(20);
    expect(store.getState().validation).toBe('ok');
    store.getState().addSequence();
    store.getState().updateSequence('a', { description: 'one' });
    expect(store.getState().save).toBe('unsaved');
    await tick(60);
    expect(saved).toHaveLength(1);
    expect(saved[0]).toBe(store.getState().spec);
    expect(store.getState().save).toBe('saved');
    expect(store.getState().validation).toBe('invalid');
    expect(store.getState().issueIndex.bySequence.get('sequence_2')!.count).toBe(1);
    sync.stop();
  });

  it('shows a refused save and waits for the next edit instead of retrying', async () => {
    const store = createEditorStore({ spec: spec([]) });
    let attempts = 0;
    const sync = startSync(
      store,
      {
        validate: async () => ({ ok: true, issues: [], levels: null }),
        save: async () => {
          attempts += 1;
          throw Object.assign(new Error('sequences[0].tag: invalid'), { status: 400 });
        },
      },
      { validateDelay: 1, saveDelay: 1, retryDelay: 5 },
    );
    store.getState().addSequence();
    await tick(40);
    expect(store.getState().save).toBe('error');
    expect(store.getState().saveError).toContain('invalid');
    expect(attempts).toBe(1);
    sync.stop();
  });

  it('drops a validation answer for a spec that has changed since', async () => {
    const store = createEditorStore({ spec: spec([]) });
    let release: (() => void) | null = null;
    const sync = startSync(
      store,
      {
        validate: (s) =>
          new Promise((resolve) => {
            const answer = { ok: s.sequences.length === 0, issues: s.sequences.length ? [] : [], levels: null };
            release = () => resolve(answer);
          }),
        save: async () => undefined,
      },
      { validateDelay: 1, saveDelay: 1000 },
    );
    store.getState().addSequence();
    (release as (() => void) | null)?.();
    await tick(10);
    expect(store.getState().validation).toBe('pending');
    sync.stop();
  });
});
