import { describe, expect, it } from 'vitest';

import { cut, eventBadges, headerText, rowText } from '../cardText';

describe('card text', () => {
  it('cuts with an ellipsis only when needed', () => {
    expect(cut('short', 10)).toBe('short');
    expect(cut('a-much-longer-name', 8)).toBe('a-much-…');
    expect(cut('x', 0)).toBe('');
  });

  it('leaves the subtitle less room when badges are shown', () => {
    const [, plain] = rowText('send-confirmation', 'transactional · order-confirmed', []);
    const [, crowded] = rowText('send-confirmation', 'transactional · order-confirmed', ['may fail', 'if']);
    expect(crowded.length).toBeLessThan(plain.length);
    expect(crowded.endsWith('…') || crowded === '').toBe(true);
  });

  it('lists badges for conditions, retries, allow_fail, critical and rollback', () => {
    const labels = eventBadges({
      type: 'ACTION',
      event: 'x',
      input: {},
      condition: '$Input{a} == 1',
      retries: 3,
      allow_fail: true,
      critical: true,
      rollback: { type: 'ACTION', event: 'undo', input: {} },
    }).map((b) => b.label);
    expect(labels).toEqual(['if', '↻3', 'may fail', 'critical', '⟲']);
  });

  it('cuts a header tag harder when chips share the header', () => {
    const tag = 'send-confirmation-to-the-customer';
    expect(headerText(tag, 0, 0).length).toBeGreaterThan(headerText(tag, 7, 1).length);
  });
});
