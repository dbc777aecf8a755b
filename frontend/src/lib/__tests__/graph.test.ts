import { describe, expect, it } from 'vitest';

import { canConnect, graphToSpec, specToEdges, specToNodes } from '../graph';
import { indexIssues } from '../paths';
import { ev, orderFulfillment, seq, spec } from './fixtures';

describe('specToNodes / specToEdges', () => {
  it('makes one node per sequence and one edge per parent link', () => {
    const s = orderFulfillment();
    const nodes = specToNodes(s);
    const edges = specToEdges(s);
    expect(nodes.map((n) => n.id)).toEqual(s.sequences.map((q) => q.tag));
    expect(nodes.find((n) => n.id === 'create-order')!.data.level).toBe(3);
    expect(edges.map((e) => `${e.source}->${e.target}`).sort()).toEqual(
      [
        'validate->payment',
        'payment->reserve-inventory',
        'reserve-inventory->create-order',
        'create-order->send-confirmation',
        'create-order->queue-fulfillment',
      ].sort(),
    );
  });

  it('uses manual positions from the layout over the level layout', () => {
    const s = orderFulfillment();
    s.layout.positions = { payment: { x: 1234, y: -5 } };
    const nodes = specToNodes(s);
    expect(nodes.find((n) => n.id === 'payment')!.position).toEqual({ x: 1234, y: -5 });
  });

  it('reuses unchanged node objects so memoized cards do not re-render', () => {
    const s = spec([seq('a', [], [ev('x')]), seq('b', ['a'], [ev('y')])]);
    const first = specToNodes(s);
    const edited = { ...s, sequences: [s.sequences[0]!, { ...s.sequences[1]!, events: [ev('y'), ev('z')] }] };
    const second = specToNodes(edited, { prev: { nodes: first, edges: [] } });
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
  });

  it('attaches validation issues to the node they point at', () => {
    const s = spec([seq('a', [], [ev('x')]), seq('b', ['a'], [ev('y'), ev('z')])]);
    const index = indexIssues(s, [{ path: 'sequences[1].events[1].input.body.id', message: "unknown step 'pay'" }]);
    const nodes = specToNodes(s, { issues: index.bySequence });
    expect(nodes[0]!.data.issues).toBeUndefined();
    expect(nodes[1]!.data.issues!.events.get(1)![0]!.message).toBe("unknown step 'pay'");
  });

  it('skips edges to unknown parents and keeps duplicate tags visible', () => {
    const s = spec([seq('a'), seq('a'), seq('b', ['ghost', 'a'])]);
    expect(specToNodes(s).map((n) => n.id)).toEqual(['a', 'a#1', 'b']);
    expect(specToEdges(s).map((e) => e.id)).toEqual(['a->b']);
  });
});

describe('graphToSpec', () => {
  it('round-trips parents and positions', () => {
    const s = orderFulfillment();
    const nodes = specToNodes(s);
    const edges = specToEdges(s);
    const back = graphToSpec(s, nodes, edges);
    expect(back.sequences.map((q) => q.parents)).toEqual(s.sequences.map((q) => q.parents));
    expect(back.sequences[0]).toBe(s.sequences[0]);
    expect(Object.keys(back.layout.positions).sort()).toEqual(s.sequences.map((q) => q.tag).sort());
  });

  it('turns new edges into parents and removed edges into fewer parents', () => {
    const s = spec([seq('a'), seq('b'), seq('c', ['a'])]);
    const back = graphToSpec(s, [], [
      { source: 'b', target: 'c' },
      { source: 'a', target: 'b' },
    ]);
    expect(back.sequences.map((q) => q.parents)).toEqual([[], ['a'], ['b']]);
  });
});

describe('canConnect', () => {
  it('refuses self links, duplicates and cycles', () => {
    const s = spec([seq('a'), seq('b', ['a']), seq('c', ['b'])]);
    expect(canConnect(s, 'a', 'a')).toBe(false);
    expect(canConnect(s, 'a', 'b')).toBe(false);
    expect(canConnect(s, 'c', 'a')).toBe(false);
    expect(canConnect(s, 'a', 'c')).toBe(true);
  });
});
