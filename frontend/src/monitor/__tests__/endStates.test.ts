import { describe, expect, it } from 'vitest';

import { parseSpec } from '../../lib/spec';
import { RUN_FINISHED, applyEntries, durationMs, emptyRun, settled, stepLabel, type Entry } from '../model';

const spec = parseSpec({
  sequences: [
    { tag: 'main', events: [{ type: 'CODE', event: 'x:a', tag: 'charge' }, { type: 'WAIT_SIGNAL', event: 'approve', tag: 'wait' }, { type: 'CODE', event: 'x:b', tag: 'finish' }] },
    { tag: 'later', parents: ['main'], events: [{ type: 'CODE', event: 'x:c', tag: 'ship' }] },
  ],
});

function entries(list: [string, string, unknown, string][]): Entry[] {
  return list.map(([kind, step, data, at], i) => ({ run: 1, seq: i + 1, kind, step, data: data as Entry['data'], at }));
}

const CANCELLED_RUN = entries([
  ['run_started', '', { input: {} }, '2025-01-01T00:00:00.000Z'],
  ['sequence_started', 'main', {}, '2025-01-01T00:00:00.000Z'],
  ['step_started', 'charge', { attempt: 1 }, '2025-01-01T00:00:00.100Z'],
  ['step_completed', 'charge', { output: { id: 'ch_1' } }, '2025-01-01T00:00:00.200Z'],
  ['step_started', 'wait', { attempt: 1 }, '2025-01-01T00:00:00.200Z'],
  ['step_waiting', 'wait', { signals: ['approve'] }, '2025-01-01T00:00:00.200Z'],
  ['run_waiting', '', {}, '2025-01-01T00:00:00.200Z'],
  ['log', '', { message: 'cancelled by ann' }, '2025-01-01T00:00:05.000Z'],
  ['sequence_cancelled', 'main', { why: 'the run is stopping (cancelled)' }, '2025-01-01T00:00:05.000Z'],
  ['rollback_started', '', { steps: ['charge'] }, '2025-01-01T00:00:05.100Z'],
  ['step_rolled_back', 'charge', { attempt: 1, input: { charge: 'ch_1' }, output: { refund: 're_1' } }, '2025-01-01T00:00:05.200Z'],
  ['sequence_not_run', 'later', { was: 'pending', why: 'the run ended cancelled: customer called' }, '2025-01-01T00:00:05.300Z'],
  ['step_cancelled', 'wait', { was: 'waiting', why: 'the run ended cancelled: customer called' }, '2025-01-01T00:00:05.300Z'],
  ['step_not_run', 'finish', { was: 'pending', why: 'the run ended cancelled: customer called' }, '2025-01-01T00:00:05.300Z'],
  ['step_not_run', 'ship', { was: 'pending', why: 'the run ended cancelled: customer called' }, '2025-01-01T00:00:05.300Z'],
  ['run_cancelled', '', { error: { message: 'customer called' } }, '2025-01-01T00:00:05.300Z'],
]);

describe('a run that ended, from its journal alone', () => {
  it('shows no step running or waiting, and says why each did not finish', () => {
    const view = applyEntries(emptyRun(1, spec), CANCELLED_RUN);
    expect(view.status).toBe('cancelled');
    const statuses = Object.fromEntries(Object.values(view.steps).map((s) => [s.tag, s.status]));
    expect(statuses).toEqual({ charge: 'rolled_back', wait: 'cancelled', finish: 'not_run', ship: 'not_run' });
    expect(view.sequences).toEqual({ main: 'cancelled', later: 'not_run' });
    expect(stepLabel(view.steps.wait!)).toBe('cancelled');
    expect(view.steps.wait!.waitingFor).toBe('');
    expect(view.steps.finish!.why).toContain('customer called');
    // The cancelled step's time stops where the run stopped it.
    expect(durationMs(view.steps.wait!.startedAt, view.steps.wait!.finishedAt, Date.parse('2030-01-01'))).toBe(5100);
  });

  it('shows the rollback call with its own input and output', () => {
    const view = applyEntries(emptyRun(1, spec), CANCELLED_RUN);
    const charge = view.steps.charge!;
    expect(charge.rollback).toBe('completed');
    expect(charge.rollbackInput).toEqual({ charge: 'ch_1' });
    expect(charge.rollbackOutput).toEqual({ refund: 're_1' });
    expect(charge.output).toEqual({ id: 'ch_1' }); // the step's own output is kept
  });

  it('stops every timer at the run end even for a journal that left a step open', () => {
    const old = applyEntries(
      emptyRun(1, spec),
      entries([
        ['run_started', '', {}, '2025-01-01T00:00:00.000Z'],
        ['step_started', 'charge', { attempt: 1 }, '2025-01-01T00:00:01.000Z'],
        ['run_rolled_back', '', { error: {} }, '2025-01-01T00:00:03.000Z'],
      ]),
    );
    expect(RUN_FINISHED).toContain(old.status);
    const view = settled(old);
    const charge = view.steps.charge!;
    expect(durationMs(charge.startedAt, charge.finishedAt, Date.parse('2030-01-01'))).toBe(2000);
    expect(charge.status).toBe('running'); // what the journal holds: no state is invented
  });

  it('marks a rollback that failed for good as failed, a retried one as retrying', () => {
    const base = entries([
      ['run_started', '', {}, '2025-01-01T00:00:00.000Z'],
      ['rollback_failed', 'charge', { attempt: 1, error: { message: 'x' }, retrying: true }, '2025-01-01T00:00:01.000Z'],
    ]);
    expect(applyEntries(emptyRun(1, spec), base).steps.charge!.rollback).toBe('retrying');
    const final = [...base, { run: 1, seq: 3, kind: 'rollback_failed', step: 'charge', data: { attempt: 2, error: { message: 'y' }, final: true, input: { a: 1 } }, at: '2025-01-01T00:00:02.000Z' }];
    const charge = applyEntries(emptyRun(1, spec), final).steps.charge!;
    expect(charge.rollback).toBe('failed');
    expect(charge.rollbackError).toEqual({ message: 'y' });
    expect(charge.rollbackInput).toEqual({ a: 1 });
  });
});
