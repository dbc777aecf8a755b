import { describe, expect, it } from 'vitest';

import { filterWorkflows, slugify } from '../browse';

const list = [
  { tag: 'order', name: 'Order Fulfillment', description: '', source: 'canvas' as const, activations: [{ env: 'dev', active: true }, { env: 'prd', active: false }] },
  { tag: 'nightly', name: 'Nightly report', description: 'sends mail', source: 'code' as const, activations: [{ env: 'prd', active: true }] },
  { tag: 'draft', name: 'Sketch', description: '', source: 'canvas' as const, activations: [] },
];

describe('filterWorkflows', () => {
  it('filters by text, source and activation', () => {
    const tags = (f: Partial<Parameters<typeof filterWorkflows>[1]>) =>
      filterWorkflows(list, { query: '', source: 'all', activation: 'all', ...f }).map((w) => w.tag);
    expect(tags({})).toEqual(['order', 'nightly', 'draft']);
    expect(tags({ query: 'MAIL' })).toEqual(['nightly']);
    expect(tags({ source: 'canvas' })).toEqual(['order', 'draft']);
    expect(tags({ activation: 'active' })).toEqual(['order', 'nightly']);
    expect(tags({ activation: 'inactive' })).toEqual(['draft']);
    expect(tags({ activation: 'env:prd' })).toEqual(['nightly']);
  });

  it('slugifies names into tags', () => {
    expect(slugify('  Order Fulfillment! v2 ')).toBe('order-fulfillment-v2');
  });
});
