import { describe, expect, it } from 'vitest';

import { computeLevels, levelColumns } from '../levels';
import { levelLayout } from '../layout';
import { mainSequence, orderFulfillment, seq } from './fixtures';

describe('computeLevels', () => {
  it('puts roots at level 0 and children one past their deepest parent', () => {
    const levels = computeLevels([seq('a'), seq('b', ['a']), seq('c'), seq('d', ['b', 'c'])]);
    expect(Object.fromEntries(levels.level)).toEqual({ a: 0, b: 1, c: 0, d: 2 });
    expect(levels.depth).toBe(3);
    expect(levels.issues).toEqual([]);
  });

  it('gives the order-fulfillment example five levels with two leaves', () => {
    const levels = computeLevels(orderFulfillment().sequences);
    expect(Object.fromEntries(levels.level)).toEqual({
      validate: 0,
      payment: 1,
      'reserve-inventory': 2,
      'create-order': 3,
      'send-confirmation': 4,
      'queue-fulfillment': 4,
    });
  });

  it('gives the main_sequence example one level', () => {
    const levels = computeLevels(mainSequence().sequences);
    expect(levels.level.get('main_sequence')).toBe(0);
    expect(levels.depth).toBe(1);
  });

  it('reports cycles, unknown parents and a level above its parents', () => {
    const levels = computeLevels([
      seq('a', ['c']),
      seq('b', ['a']),
      seq('c', ['b']),
      seq('d', ['ghost']),
      { ...seq('e', ['d']), level: 0 },
    ]);
    expect([...levels.cyclic].sort()).toEqual(['a', 'b', 'c']);
    const paths = levels.issues.map((i) => i.path);
    expect(paths).toContain('sequences[3].parents[0]');
    expect(paths).toContain('sequences[4].level');
    expect(paths.filter((p) => p.endsWith('.parents'))).toHaveLength(3);
    // Every sequence still gets a level so the canvas can draw a broken graph.
    expect(levels.level.size).toBe(5);
  });

  it('puts a sequence at its given level when that is deeper, and its children below it', () => {
    const levels = computeLevels([
      { ...seq('second'), level: 2 },
      { ...seq('first'), level: 1 },
      seq('free'),
      seq('tail', ['second']),
    ]);
    expect(Object.fromEntries(levels.level)).toEqual({ second: 2, first: 1, free: 0, tail: 3 });
    expect(levels.issues).toEqual([]);
    expect(levels.depth).toBe(4);
  });

  it('handles a 2,000-deep chain without overflowing the stack', () => {
    const chain = Array.from({ length: 2000 }, (_, i) => seq(`s${i}`, i ? [`s${i - 1}`] : []));
    expect(computeLevels(chain).level.get('s1999')).toBe(1999);
  });
});

describe('levelColumns and the level layout', () => {
  it('orders each column by its parents', () => {
    const sequences = [seq('r1'), seq('r2'), seq('c2', ['r2']), seq('c1', ['r1'])];
    expect(levelColumns(sequences, computeLevels(sequences))).toEqual([
      ['r1', 'r2'],
      ['c1', 'c2'],
    ]);
  });

  it('places levels as columns (LR) or rows (TB)', () => {
    const sequences = orderFulfillment().sequences;
    const lr = levelLayout(sequences, 'LR');
    expect(lr.get('payment')!.x).toBeGreaterThan(lr.get('validate')!.x);
    expect(lr.get('send-confirmation')!.x).toBe(lr.get('queue-fulfillment')!.x);
    expect(lr.get('send-confirmation')!.y).not.toBe(lr.get('queue-fulfillment')!.y);
    const tb = levelLayout(sequences, 'TB');
    expect(tb.get('payment')!.y).toBeGreaterThan(tb.get('validate')!.y);
    expect(tb.get('send-confirmation')!.y).toBe(tb.get('queue-fulfillment')!.y);
  });
});
