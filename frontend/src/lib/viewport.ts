// Windowed rendering for large graphs. React Flow's own culling recomputes the visible set on
// every frame of a pan (mounting and unmounting cards as they cross the edge); here the set
// is the view plus three quarters of a screen around it, recomputed only when the view has
// moved half a screen or the zoom has changed by a quarter octave — most pan frames touch no
// DOM at all.

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

type Transform = readonly [number, number, number];

interface Placed {
  id: string;
  position: { x: number; y: number };
  width?: number;
  height?: number;
  selected?: boolean;
  dragging?: boolean;
}

/** Graphs up to this many sequences render whole (nothing to gain from windowing). */
export const WINDOW_MIN_NODES = 150;

export function graphBounds(nodes: readonly Placed[]): Box {
  if (!nodes.length) return { x: 0, y: 0, width: 0, height: 0 };
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const n of nodes) {
    minX = Math.min(minX, n.position.x);
    minY = Math.min(minY, n.position.y);
    maxX = Math.max(maxX, n.position.x + (n.width ?? 0));
    maxY = Math.max(maxY, n.position.y + (n.height ?? 0));
  }
  return { x: minX, y: minY, width: maxX - minX, height: maxY - minY };
}

/** Changes only when the view moved half a screen or zoomed a quarter octave. */
export function windowKey(t: Transform, width: number, height: number): string {
  if (!width || !height) return 'unmeasured';
  const [tx, ty, zoom] = t;
  const zoomBucket = Math.round(Math.log2(zoom) * 4);
  const tileW = width / zoom / 2;
  const tileH = height / zoom / 2;
  return `${zoomBucket}:${Math.floor(-tx / zoom / tileW)}:${Math.floor(-ty / zoom / tileH)}`;
}

/** The view (in flow coordinates) grown by 3/4 of a screen on each side (more than the
 * half screen the view can move before the window is recomputed). */
export function windowRect(t: Transform, width: number, height: number): Box {
  const [tx, ty, zoom] = t;
  const w = width / zoom;
  const h = height / zoom;
  return { x: -tx / zoom - 0.75 * w, y: -ty / zoom - 0.75 * h, width: 2.5 * w, height: 2.5 * h };
}

function overlaps(n: Placed, r: Box): boolean {
  const w = n.width ?? 0;
  const h = n.height ?? 0;
  return n.position.x + w >= r.x && n.position.x <= r.x + r.width && n.position.y + h >= r.y && n.position.y <= r.y + r.height;
}

/** Nodes in the window (and any selected or dragged one), and the edges between them. */
export function inWindow<N extends Placed, E extends { source: string; target: string }>(
  nodes: readonly N[],
  edges: readonly E[],
  rect: Box | null,
): { nodes: N[]; edges: E[] } {
  if (!rect) return { nodes: [], edges: [] };
  const kept = nodes.filter((n) => n.selected || n.dragging || overlaps(n, rect));
  const ids = new Set(kept.map((n) => n.id));
  return { nodes: kept, edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)) };
}
