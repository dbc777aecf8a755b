import { describe, expect, it } from 'vitest';

import { graphBounds, inWindow, windowKey, windowRect } from '../viewport';

const node = (id: string, x: number, y: number, extra = {}) => ({ id, position: { x, y }, width: 100, height: 50, ...extra });

describe('windowed rendering', () => {
  it('bounds every node', () => {
    expect(graphBounds([node('a', 0, 0), node('b', 400, -100)])).toEqual({ x: 0, y: -100, width: 500, height: 150 });
    expect(graphBounds([])).toEqual({ x: 0, y: 0, width: 0, height: 0 });
  });

  it('keeps its key through small pans and changes it after half a screen or a zoom step', () => {
    const k = windowKey([0, 0, 1], 1000, 800);
    expect(windowKey([-100, -50, 1], 1000, 800)).toBe(k);
    expect(windowKey([-600, 0, 1], 1000, 800)).not.toBe(k);
    expect(windowKey([0, 0, 1.05], 1000, 800)).toBe(k);
    expect(windowKey([0, 0, 1.3], 1000, 800)).not.toBe(k);
    expect(windowKey([0, 0, 1], 0, 0)).toBe('unmeasured');
  });

  it('renders the view plus 3/4 screen around it, selected nodes, and edges inside', () => {
    const rect = windowRect([0, 0, 1], 1000, 800);
    expect(rect).toEqual({ x: -750, y: -600, width: 2500, height: 2000 });
    const nodes = [node('in', 100, 100), node('near', 1500, 0), node('far', 5000, 0), node('picked', 9000, 0, { selected: true })];
    const edges = [
      { source: 'in', target: 'near' },
      { source: 'in', target: 'far' },
      { source: 'near', target: 'picked' },
    ];
    const w = inWindow(nodes, edges, rect);
    expect(w.nodes.map((n) => n.id)).toEqual(['in', 'near', 'picked']);
    expect(w.edges).toEqual([edges[0], edges[2]]);
    expect(inWindow(nodes, edges, null)).toEqual({ nodes: [], edges: [] });
  });
});
