import { describe, expect, it } from 'vitest';

import { bodyTags, iterationStates } from '../../lib/loops';
import { parseSpec } from '../../lib/spec';
import { applyEntries, applyEntry, applySnapshot, compareRuns, emptyRun, formatDuration, rowLabel, skipNote, stepLabel, timeline, type Entry } from '../model';

const spec = parseSpec({
  sequences: [
    { tag: 'main', events: [{ type: 'CODE', event: 'x:a', tag: 'validate' }, { type: 'CODE', event: 'x:b', tag: 'pay', retries: 2 }] },
    { tag: 'ship', parents: ['main'], events: [{ type: 'WAIT_SIGNAL', event: 'shipped', tag: 'wait' }] },
  ],
});

let seq = 0;
function e(kind: string, step = '', data: unknown = {}, at = `2025-01-01T00:00:0${Math.min(9, seq)}.000Z`): Entry {
  seq += 1;
  return { run: 1, seq, kind, step, data: data as Entry['data'], at };
}

describe('the run model', () => {
  it('starts with every step of the spec pending', () => {
    const view = emptyRun(1, spec);
    expect(Object.keys(view.steps)).toEqual(['validate', 'pay', 'wait']);
    expect(view.steps.pay!.maxAttempts).toBe(3);
    expect(view.steps.validate!.status).toBe('pending');
  });

  it('follows a run through retries, a wait and completion', () => {
    seq = 0;
    let view = emptyRun(1, spec);
    view = applyEntries(view, [
      e('run_started', '', { input: { order: 7 }, version: 2 }),
      e('sequence_started', 'main'),
      e('step_started', 'validate', { attempt: 1 }),
      e('step_completed', 'validate', { attempt: 1, output: { ok: true } }),
      e('step_started', 'pay', { attempt: 1 }),
      e('step_retrying', 'pay', { attempt: 1, error: { message: 'boom' }, delay_ms: 10 }),
    ]);
    expect(view.status).toBe('running');
    expect(view.input).toEqual({ order: 7 });
    expect(view.version).toBe(2);
    expect(view.steps.validate!.status).toBe('completed');
    expect(view.steps.validate!.output).toEqual({ ok: true });
    expect(view.steps.pay!.status).toBe('retrying');
    expect(stepLabel(view.steps.pay!)).toBe('retrying 2/3');
    view = applyEntries(view, [
      e('step_started', 'pay', { attempt: 2 }),
      e('step_completed', 'pay', { attempt: 2, output: 1 }),
      e('sequence_completed', 'main'),
      e('step_waiting', 'wait', { signals: ['shipped'], until: null }),
      e('run_waiting'),
    ]);
    expect(view.steps.pay!.attempts.map((a) => a.status)).toEqual(['failed', 'completed']);
    expect(view.steps.wait!.status).toBe('waiting');
    expect(stepLabel(view.steps.wait!)).toBe('waiting: signal shipped');
    expect(view.status).toBe('waiting');
    expect(view.sequences.main).toBe('completed');
    view = applyEntries(view, [
      e('signal_received', '', { name: 'shipped', payload: { box: 1 }, by: 'otto' }),
      e('step_completed', 'wait', { output: { box: 1 } }),
      e('run_completed', '', { output: { done: true } }),
    ]);
    expect(view.status).toBe('completed');
    expect(view.output).toEqual({ done: true });
    expect(view.signals).toEqual([{ name: 'shipped', payload: { box: 1 }, at: expect.any(String), by: 'otto' }]);
    expect(view.lastSeq).toBe(14);
  });

  it('ignores an entry it has already applied', () => {
    let view = applyEntry(emptyRun(1), { run: 1, seq: 1, kind: 'step_started', step: 'a', data: { attempt: 1 }, at: '' });
    const again = applyEntry(view, { run: 1, seq: 1, kind: 'step_started', step: 'a', data: { attempt: 1 }, at: '' });
    expect(again).toBe(view);
    view = applyEntry(view, { run: 1, seq: 2, kind: 'step_failed', step: 'a', data: { error: 'x', allowed: true }, at: '' });
    expect(view.steps.a!.status).toBe('failed_allowed');
  });

  it('keeps the log, state and checkpoints', () => {
    seq = 0;
    const view = applyEntries(emptyRun(1), [
      e('log', 'a', { level: 'warning', message: 'slow' }),
      e('state_set', 'a', { values: { n: 1 } }),
      e('state_set', 'b', { values: { m: 2 } }),
      e('checkpoint', 'c', { name: 'paid', data: { id: 3 } }),
    ]);
    expect(view.log).toEqual([{ seq: 1, at: expect.any(String), step: 'a', level: 'warning', message: 'slow' }]);
    expect(view.state).toEqual({ n: 1, m: 2 });
    expect(view.checkpoints[0]).toMatchObject({ name: 'paid', step: 'c', data: { id: 3 } });
  });

  it('marks the steps of a skipped sequence skipped and rollbacks rolled back', () => {
    seq = 0;
    const view = applyEntries(emptyRun(1, spec), [
      e('sequence_skipped', 'ship'),
      e('step_completed', 'validate', {}),
      e('rollback_started', '', { steps: ['validate'] }),
      e('step_rolled_back', 'validate', {}),
      e('run_rolled_back', '', { error: { message: 'no' } }),
    ]);
    expect(view.steps.wait!.status).toBe('skipped');
    expect(view.steps.validate!.status).toBe('rolled_back');
    expect(view.status).toBe('rolled_back');
    expect(view.error).toEqual({ message: 'no' });
  });

  it('keeps the output of a run rolled back by trigger_rollback that then returned', () => {
    seq = 0;
    const view = applyEntries(emptyRun(1, spec), [
      e('step_completed', 'validate', {}),
      e('step_rolled_back', 'validate', {}),
      e('run_rolled_back', '', { output: { success: false, reason: 'fraud_detected' }, error: null, rolled_back_steps: ['validate'] }),
    ]);
    expect(view.status).toBe('rolled_back');
    expect(view.output).toEqual({ success: false, reason: 'fraud_detected' });
    expect(view.error).toBeNull();
  });

  it('takes a snapshot as the new truth', () => {
    const view = applySnapshot(emptyRun(1, spec), {
      run: { id: 1, status: 'running', input: { a: 1 }, state: { s: 1 }, environment_slug: 'dev', version: 3 },
      steps: [{ tag: 'validate', sequence: 'main', status: 'completed', attempt: 1, output: 5, attempts: [{ n: 1, status: 'completed' }] }],
      sequences: [{ tag: 'main', status: 'started' }],
      last_seq: 41,
    });
    expect(view.lastSeq).toBe(41);
    expect(view.steps.validate!.status).toBe('completed');
    expect(view.steps.pay!.status).toBe('pending');
    expect(view.environment).toBe('dev');
    expect(view.version).toBe(3);
    expect(applyEntry(view, { run: 1, seq: 41, kind: 'run_completed', step: '', data: {}, at: '' }).status).toBe('running');
  });

  it('draws the timeline from step starts and ends', () => {
    const view = applySnapshot(emptyRun(1, spec), {
      run: { id: 1, status: 'completed', started_at: '2025-01-01T00:00:00Z', finished_at: '2025-01-01T00:00:03Z' },
      steps: [
        { tag: 'pay', status: 'completed', started_at: '2025-01-01T00:00:01Z', finished_at: '2025-01-01T00:00:03Z' },
        { tag: 'validate', status: 'completed', started_at: '2025-01-01T00:00:00Z', finished_at: '2025-01-01T00:00:01Z' },
      ],
    });
    expect(timeline(view)).toEqual([
      { tag: 'validate', status: 'completed', start: 0, end: 1000 },
      { tag: 'pay', status: 'completed', start: 1000, end: 3000 },
    ]);
  });

  it('compares two runs step by step', () => {
    const a = applySnapshot(emptyRun(1, spec), { steps: [{ tag: 'pay', status: 'completed', output: 1 }] });
    const b = applySnapshot(emptyRun(2, spec), { steps: [{ tag: 'pay', status: 'failed' }] });
    const rows = compareRuns(a, b);
    expect(rows.find((r) => r.tag === 'pay')!.same).toBe(false);
    expect(rows.find((r) => r.tag === 'validate')!.same).toBe(true);
  });

  it('formats durations', () => {
    expect(formatDuration(12)).toBe('12 ms');
    expect(formatDuration(1500)).toBe('1.50 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(null)).toBe('');
  });

  it('follows a loop iteration by iteration, from the journal or a snapshot', () => {
    seq = 0;
    const loopSpec = parseSpec({
      sequences: [{ tag: 'main', events: [{ type: 'FOREACH', event: 'each', tag: 'each', loop: { items: '$Input{items}', body: [{ type: 'CODE', event: 'x:a', tag: 'work' }] } }] }],
    });
    const loop = loopSpec.sequences[0]!.events[0]!;
    let view = applyEntries(emptyRun(1, loopSpec), [
      e('step_started', 'each', { attempt: 1 }),
      e('step_waiting', 'each', { loop: { iterations: 3, max_concurrency: 2 } }),
      e('sequence_started', 'each[0]', { index: 0 }),
      e('sequence_started', 'each[1]', { index: 1 }),
      e('step_started', 'work[0]', { attempt: 1 }),
      e('step_completed', 'work[0]', { attempt: 1, output: 1 }),
      e('sequence_completed', 'each[0]'),
      e('step_started', 'work[1]', { attempt: 1 }),
    ]);
    expect(view.steps.each!.iterations).toBe(3);
    expect(stepLabel(view.steps.each!)).toBe('waiting: 3 iterations');
    const states = (v: typeof view) => iterationStates('each', bodyTags(loop), v.steps, v.sequences, v.steps.each!.iterations);
    expect(states(view)).toEqual(['completed', 'running', 'pending']);
    view = applySnapshot(emptyRun(1, loopSpec), {
      status: 'running',
      steps: [
        { tag: 'each', sequence: 'main', status: 'waiting', wait: { loop: { n: 4, items: [1, 2, 3, 4] } } },
        { tag: 'work[0]', sequence: 'each[0]', status: 'completed' },
        { tag: 'work[1]', sequence: 'each[1]', status: 'failed' },
      ],
      sequences: [{ tag: 'main', status: 'waiting' }, { tag: 'each[0]', status: 'completed' }, { tag: 'each[1]', status: 'failed' }],
    });
    expect(states(view)).toEqual(['completed', 'failed', 'pending', 'pending']);
  });
});

describe('a sequence skipped by its skip_if', () => {
  const skippable = parseSpec({
    sequences: [
      { tag: 'main', events: [{ type: 'CODE', event: 'x:a', tag: 'validate' }] },
      { tag: 'tests', parents: ['main'], skip_if: '$Input{skipTests} == true', events: [{ type: 'CODE', event: 'x:u', tag: 'unit' }] },
    ],
  });

  it('shows the sequence as skipped with its reason and its steps as never run', () => {
    seq = 0;
    let view = emptyRun(1, skippable);
    view = applyEntries(view, [
      e('run_started', '', { input: { skipTests: true } }),
      e('sequence_started', 'main'),
      e('step_started', 'validate', { attempt: 1 }),
      e('step_completed', 'validate', { attempt: 1, output: {} }),
      e('sequence_completed', 'main'),
      e('sequence_skipped', 'tests', { skip_if: '$Input{skipTests} == true' }),
    ]);
    const tests = skippable.sequences[1]!;
    expect(view.sequences.tests).toBe('skipped');
    expect(view.steps.unit!.status).toBe('skipped');
    expect(skipNote(tests, view.sequences.tests!)).toBe('skipped: skip_if held ($Input{skipTests} == true)');
    expect(rowLabel(view.steps.unit, view.sequences.tests!)).toBe('not run: sequence skipped');
  });

  it('leaves sequences that ran, and steps skipped by their own condition, as they are', () => {
    const main = skippable.sequences[0]!;
    expect(skipNote(main, 'completed')).toBeNull();
    const view = emptyRun(1, skippable);
    const skippedStep = { ...view.steps.validate!, status: 'skipped' as const };
    expect(rowLabel(skippedStep, 'completed')).toBe('skipped');
    expect(rowLabel(undefined, 'running')).toBe('pending');
  });
});
