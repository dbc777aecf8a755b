import { describe, expect, it } from 'vitest';

import { canonical, diffMarks, diffSpecs, normalizeEvent } from '../diff';
import { ev, orderFulfillment, seq, spec } from './fixtures';

describe('diffSpecs', () => {
  it('finds nothing between a spec and its copy, whatever the layout', () => {
    const a = orderFulfillment();
    const b = orderFulfillment();
    b.layout.positions = { validate: { x: 1, y: 2 } };
    const d = diffSpecs(a, b);
    expect(d.summary).toEqual({ added: 0, removed: 0, changed: 0 });
    expect([...d.sequences.values()].every((s) => s.change === 'same')).toBe(true);
    expect(d.sections).toEqual([]);
  });

  it('marks added, removed and changed sequences, events and edges', () => {
    const left = spec([seq('a', [], [ev('x'), ev('y')]), seq('b', ['a'], [ev('z')]), seq('gone', ['a'])]);
    const right = spec([
      seq('a', [], [ev('x', { id: 1 }), ev('y')]),
      seq('b', ['a'], [ev('z')]),
      seq('new', ['b'], [ev('n')]),
    ]);
    const d = diffSpecs(left, right);
    expect(d.sequences.get('a')).toEqual({ change: 'changed', left: ['changed', 'same'], right: ['changed', 'same'] });
    expect(d.sequences.get('b')!.change).toBe('same');
    expect(d.sequences.get('gone')!.change).toBe('removed');
    expect(d.sequences.get('new')).toEqual({ change: 'added', left: [], right: ['added'] });
    expect(d.edges.get('a->gone')).toBe('removed');
    expect(d.edges.get('b->new')).toBe('added');
    expect(d.edges.get('a->b')).toBe('same');
    expect(d.summary).toEqual({ added: 1, removed: 1, changed: 1 });
    expect([...diffMarks(d, 'left').keys()]).toEqual(['a', 'b', 'gone']);
    expect([...diffMarks(d, 'right').keys()]).toEqual(['a', 'b', 'new']);
  });

  it('sees reordered events as moved and changed parents as a changed sequence', () => {
    const left = spec([seq('r'), seq('s', [], [ev('x'), ev('y'), ev('z')])]);
    const right = spec([seq('r'), seq('s', ['r'], [ev('y'), ev('x'), ev('z')])]);
    const d = diffSpecs(left, right).sequences.get('s')!;
    expect(d.change).toBe('changed');
    expect(d.right).toEqual(['moved', 'moved', 'same']);
  });

  it('treats explicit defaults as equal to omitted fields', () => {
    expect(canonical(normalizeEvent({ ...ev('x'), retries: 0, allow_fail: false, condition: '' }))).toBe(canonical(normalizeEvent(ev('x'))));
    const left = spec([seq('a', [], [{ ...ev('x'), retries: 0 }])]);
    const right = spec([seq('a', [], [ev('x')])]);
    expect(diffSpecs(left, right).sequences.get('a')!.change).toBe('same');
  });

  it('lists changed workflow sections', () => {
    const a = orderFulfillment();
    const b = orderFulfillment();
    b.options = { ...b.options, timeout: 1000 };
    b.signals = {};
    expect(diffSpecs(a, b).sections).toEqual(['options', 'signals']);
  });
});
