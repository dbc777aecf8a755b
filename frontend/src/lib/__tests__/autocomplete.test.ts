import { describe, expect, it } from 'vitest';

import { complete, earlierSteps, inputFields } from '../autocomplete';
import { orderFulfillment } from './fixtures';

const s = orderFulfillment();

describe('earlierSteps', () => {
  it('offers ancestors\u2019 steps and earlier steps of the same sequence only', () => {
    expect(earlierSteps(s, 'payment', 1)).toEqual(['validate', 'payment']);
    expect(earlierSteps(s, 'send-confirmation', 0)).toEqual(['validate', 'payment', 'payment-complete', 'reserve-inventory', 'create-order']);
    // A sibling's step has not run on every path.
    expect(earlierSteps(s, 'send-confirmation', 0)).not.toContain('queue-fulfillment');
  });
});

describe('complete', () => {
  const ctx = { spec: s, seqTag: 'create-order', eventIndex: 0, components: ['stripe', 'inventory-api'] };

  it('completes reference kinds and operators after $', () => {
    const c = complete('{"a": "$St', 10, ctx)!;
    expect(c.from).toBe(7);
    expect(c.items.map((i) => i.label)).toEqual(['$Step', '$State']);
    expect(c.items[0]!.insert).toBe('$Step{');
    const ops = complete('$Con', 4, ctx)!;
    expect(ops.items.map((i) => i.insert)).toEqual(['$Constant{', '$Concat(']);
  });

  it('completes step tags from earlier steps', () => {
    const c = complete('$Step{pay', 9, ctx)!;
    expect(c.items.map((i) => i.label)).toEqual(['payment', 'payment-complete']);
    expect(c.items[0]!.insert).toBe('$Step{payment}{');
  });

  it('completes sequences, then their events', () => {
    expect(complete('$Sequence{', 10, ctx)!.items.map((i) => i.label).sort()).toEqual(['payment', 'reserve-inventory', 'validate']);
    expect(complete('$Sequence{payment}{', 19, ctx)!.items.map((i) => i.label)).toEqual(['payment', 'payment-complete']);
  });

  it('completes input fields and components', () => {
    expect(complete('$Input{it', 9, ctx)!.items.map((i) => i.insert)).toEqual(['$Input{items}']);
    expect(complete('$Variable{st', 12, ctx)!.items.map((i) => i.insert)).toEqual(['$Variable{stripe}{']);
  });

  it('stays quiet outside a reference', () => {
    expect(complete('plain text', 5, ctx)).toBeNull();
    expect(complete('$Step{payment}{id} and', 22, ctx)).toBeNull();
  });

  it('reads the seed shorthand input schema too', () => {
    expect(inputFields({ reason: 'string' })).toEqual(['reason']);
  });
});
