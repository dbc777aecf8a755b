import { describe, expect, it } from 'vitest';

import { eventBadges } from '../cardText';
import { typeInfo } from '../catalog';
import { bodyTags, iterationStates, iterationSummary, loopOf } from '../loops';
import { allStepTags, parseSpec, type EventSpec } from '../spec';

const LOOP: EventSpec = {
  type: 'FOREACH',
  event: 'each',
  tag: 'charge-all',
  input: {},
  loop: {
    items: '$Input{orders}',
    max_concurrency: 3,
    body: [
      { type: 'ACTION', event: 'charge', tag: 'charge', input: { id: '$Item{id}' } },
      { type: 'NOTIFICATION', event: 'mail', tag: 'mail', input: {} },
    ],
  },
};

describe('loops on the canvas', () => {
  it('reads a FOREACH step: its list, its body and how many items run at once', () => {
    expect(loopOf(LOOP)).toMatchObject({ items: '$Input{orders}', maxConcurrency: 3 });
    expect(bodyTags(LOOP)).toEqual(['charge', 'mail']);
    expect(loopOf({ ...LOOP, type: 'ACTION' })).toBeNull();
    expect(loopOf({ ...LOOP, loop: { items: '$Input{x}', body: [] } })?.maxConcurrency).toBe(1);
  });

  it('badges a loop row with its body size and concurrency', () => {
    const badges = eventBadges(LOOP).map((b) => b.label);
    expect(badges).toEqual(['×2', '∥3']);
    expect(eventBadges(LOOP)[0]!.title).toBe('per item of $Input{orders}: charge → mail');
  });

  it('counts body steps as taken tags and keeps the loop through parseSpec', () => {
    const spec = parseSpec({ sequences: [{ tag: 'main', events: [LOOP] }] });
    expect(spec.sequences[0]!.events[0]!.loop?.body).toHaveLength(2);
    expect([...allStepTags(spec)].sort()).toEqual(['charge', 'charge-all', 'mail']);
  });

  it('drops a new FOREACH from the palette with a loop to fill in', () => {
    const fresh = typeInfo('FOREACH').template();
    expect(fresh.loop?.items).toBe('$Input{items}');
    expect(fresh.loop?.body.map((b) => b.type)).toEqual(['CODE']);
  });
});

describe('iterations in the run monitor', () => {
  const body = ['charge', 'mail'];

  it('gives each iteration the state of its body steps, in item order', () => {
    const steps = {
      'charge[0]': { status: 'completed' },
      'mail[0]': { status: 'completed' },
      'charge[1]': { status: 'completed' },
      'mail[1]': { status: 'running' },
      'charge[2]': { status: 'failed' },
      'charge[3]': { status: 'completed' },
      'mail[3]': { status: 'skipped' },
      'charge[4]': { status: 'rolled_back' },
      'mail[4]': { status: 'completed' },
    };
    const sequences = { 'charge-all[0]': 'completed', 'charge-all[1]': 'started', 'charge-all[5]': 'started' };
    const states = iterationStates('charge-all', body, steps, sequences, 7);
    expect(states).toEqual(['completed', 'running', 'failed', 'completed', 'rolled_back', 'running', 'pending']);
    expect(iterationSummary(states)).toBe('2/7 done · 2 running · 1 failed · 1 rolled back');
  });

  it('knows of iterations from the journal before any of them started, and of none', () => {
    expect(iterationStates('charge-all', body, {}, {}, 3)).toEqual(['pending', 'pending', 'pending']);
    expect(iterationStates('charge-all', body, {}, {})).toEqual([]);
    expect(iterationSummary([])).toBe('no iterations');
    const cancelled = iterationStates('charge-all', body, { 'charge[0]': { status: 'completed' } }, { 'charge-all[0]': 'cancelled' });
    expect(cancelled).toEqual(['cancelled']);
  });
});
