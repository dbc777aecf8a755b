import { describe, expect, it } from 'vitest';

import { parseComparison, parseRelated, parseRunDetail, parseRunSummary } from '../runsApi';

describe('the runs API shapes the monitor reads', () => {
  it('reads the server compare: input, output and per-step differences', () => {
    const result = parseComparison({
      a: { id: 2, status: 'cancelled', version: 1 },
      b: { id: 1, status: 'rolled_back', version: 1 },
      input_diff: [{ path: 'amount', a: 20, b: 10, change: 'changed' }],
      output_diff: [],
      steps: [
        { tag: 'charge', a: { status: 'rolled_back', attempt: 1 }, b: { status: 'rolled_back', attempt: 1 }, same_status: true, same_output: false, output_diff: [{ path: 'input.amount', a: 20, b: 10, change: 'changed' }] },
        { tag: 'new', a: null, b: { status: 'completed', attempt: 1 }, same_status: false, same_output: false, output_diff: [] },
      ],
    });
    expect(result.inputDiff).toEqual([{ path: 'amount', a: 20, b: 10, change: 'changed' }]);
    expect(result.steps[0]!.outputDiff[0]!.path).toBe('input.amount');
    expect(result.steps[0]!.sameStatus).toBe(true);
    expect(result.steps[1]!.a).toBeNull();
    expect(() => parseComparison('nope')).toThrow();
  });

  it('reads lineage both ways and ignores malformed rows', () => {
    const related = parseRelated({ origins: [{ id: 2, status: 'failed', origin_kind: '' }], derived: [{ id: 5, status: 'running', origin_kind: 'replay' }, { status: 'x' }], parent: [], children: 'bad' });
    expect(related.origins.map((r) => r.id)).toEqual([2]);
    expect(related.derived).toEqual([{ id: 5, status: 'running', originKind: 'replay', environment: '', createdAt: '' }]);
    expect(related.children).toEqual([]);
  });

  it('offers no action unless the server says the user may act', () => {
    const base = { id: 3, workflow: { tag: 'flow', product: 'acme' }, version: 1, environment: 'prd', origin: 2, origin_kind: 'replay' };
    expect(parseRunDetail(base).actions).toEqual({ allowed: false, why: '' });
    const refused = parseRunDetail({ ...base, actions: { allowed: false, why: 'prd is a production environment' } });
    expect(refused.actions.why).toContain('production');
    expect(parseRunDetail({ ...base, actions: { allowed: true, why: '' } }).actions.allowed).toBe(true);
    expect(parseRunDetail(base).origin).toBe(2);
    expect(parseRunSummary({ id: 4, origin: 3, origin_kind: 'fork' })?.origin).toBe(3);
  });
});
