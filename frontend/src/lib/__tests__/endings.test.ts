import { describe, expect, it } from 'vitest';

import { eventBadges, eventSubtitle } from '../cardText';
import { EVENT_TYPE_INFO, typeInfo } from '../catalog';
import { ENDING_TYPES, parseSpec } from '../spec';

describe('steps that end a run (RETURN, FAIL)', () => {
  it('are their own kinds in the palette, with a template for their one input', () => {
    const flow = EVENT_TYPE_INFO.filter((i) => i.group === 'flow').map((i) => i.type);
    expect(flow).toEqual(expect.arrayContaining(['RETURN', 'FAIL', 'ROLLBACK']));
    expect(typeInfo('RETURN').label).toBe('Return');
    expect(typeInfo('FAIL').label).toBe('Fail (raise)');
    expect(typeInfo('RETURN').template()).toEqual({ type: 'RETURN', event: 'return', input: { output: {} } });
    expect(typeInfo('FAIL').template()).toEqual({ type: 'FAIL', event: 'raise', input: { message: '' } });
    expect([...ENDING_TYPES].sort()).toEqual(['FAIL', 'RETURN']);
  });

  it('show what they end the run with on the card', () => {
    const ret = { type: 'RETURN' as const, event: 'return', input: { output: { success: false, reason: 'items_unavailable' } } };
    expect(eventSubtitle(ret)).toBe('returns {success, reason}');
    expect(eventSubtitle({ type: 'RETURN', event: 'return', input: { output: '$Step{a}' } })).toBe('returns "$Step{a}"');
    expect(eventSubtitle({ type: 'FAIL', event: 'raise', input: { message: 'Rate limit exceeded' } })).toBe('raises "Rate limit exceeded"');
    expect(eventSubtitle({ type: 'FAIL', event: 'raise', input: {} })).toBe('raises (no message)');
    expect(eventSubtitle({ type: 'ACTION', event: 'create-charge', app: 'stripe', input: {} })).toBe('stripe · create-charge');
    expect(eventBadges({ ...ret, condition: '$Step{validate}{available} != true' }).map((b) => b.label)).toEqual(['if', 'ends run']);
    expect(eventBadges({ type: 'ACTION', event: 'x', input: {} }).map((b) => b.label)).toEqual([]);
  });

  it('survive a round trip through the spec the canvas loads', () => {
    const spec = parseSpec({
      sequences: [{ tag: 'main', events: [{ type: 'FAIL', event: 'raise', tag: 'raise', input: { message: 'no' }, condition: '$Input{x} == 1' }] }],
    });
    expect(spec.sequences[0]!.events[0]).toMatchObject({ type: 'FAIL', input: { message: 'no' }, condition: '$Input{x} == 1' });
  });
});
