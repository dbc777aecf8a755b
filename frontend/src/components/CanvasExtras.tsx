// Cheap companions for a large canvas. A pan changes only the viewport transform, so these
// follow it by writing styles directly (no React render per frame) and keep the per-frame
// work to compositing: the dot grid is one translated layer, the minimap a canvas bitmap
// drawn when nodes change plus a moving rectangle.

import { Position, getBezierPath, useReactFlow, useStoreApi } from '@xyflow/react';
import { memo, useEffect, useMemo, useRef, type PointerEvent as ReactPointerEvent } from 'react';

import type { SequenceNode } from '../lib/graph';
import { useEditor, useEditorStore } from '../store/context';

type Transform = [number, number, number];

/** Calls `onChange` with the viewport transform whenever it changes (outside React). */
function useTransformListener(onChange: (t: Transform, size: { width: number; height: number }) => void): void {
  const flowStore = useStoreApi();
  const callback = useRef(onChange);
  callback.current = onChange;
  useEffect(() => {
    let last: Transform | null = null;
    const run = () => {
      const s = flowStore.getState();
      const t = s.transform;
      if (last && last[0] === t[0] && last[1] === t[1] && last[2] === t[2]) return;
      last = t;
      callback.current(t, { width: s.width, height: s.height });
    };
    run();
    return flowStore.subscribe(run);
  }, [flowStore]);
}

/** The dotted background, as a translated layer instead of a repainted SVG pattern. */
export function DotGrid({ gap = 20 }: { gap?: number }) {
  const ref = useRef<HTMLDivElement>(null);
  useTransformListener(([x, y, zoom]) => {
    const el = ref.current;
    if (!el) return;
    const g = gap * zoom;
    if (g < 6) {
      el.style.display = 'none';
      return;
    }
    el.style.display = '';
    const size = `${g}px ${g}px`;
    if (el.style.backgroundSize !== size) {
      // Only on zoom: the layer is one cell larger each side, so a pan is a translate.
      el.style.backgroundSize = size;
      el.style.inset = `${-g}px`;
    }
    el.style.transform = `translate(${x % g}px, ${y % g}px)`;
  });
  return <div className="dot-grid" ref={ref} aria-hidden="true" />;
}

const MAP_W = 200;
const MAP_H = 140;

export interface MiniMapProps {
  color(node: SequenceNode): string;
}

/** A minimap: nodes drawn on a canvas when they change; the view rectangle follows pans. */
export function FastMiniMap({ color }: MiniMapProps) {
  const store = useEditorStore();
  const flow = useReactFlow();
  const flowStore = useStoreApi();
  const canvas = useRef<HTMLCanvasElement>(null);
  const rect = useRef<HTMLDivElement>(null);
  const frame = useRef({ minX: 0, minY: 0, scale: 1, offX: 0, offY: 0 });
  const colorRef = useRef(color);
  colorRef.current = color;

  const placeRect = (t: Transform, size: { width: number; height: number }) => {
    const el = rect.current;
    if (!el) return;
    const f = frame.current;
    const x = (-t[0] / t[2] - f.minX) * f.scale + f.offX;
    const y = (-t[1] / t[2] - f.minY) * f.scale + f.offY;
    const w = (size.width / t[2]) * f.scale;
    const h = (size.height / t[2]) * f.scale;
    el.style.transform = `translate(${x}px, ${y}px)`;
    el.style.width = `${Math.max(4, w)}px`;
    el.style.height = `${Math.max(4, h)}px`;
  };

  useEffect(() => {
    const draw = (nodes: SequenceNode[]) => {
      const c = canvas.current;
      if (!c) return;
      const ratio = window.devicePixelRatio || 1;
      if (c.width !== MAP_W * ratio) {
        c.width = MAP_W * ratio;
        c.height = MAP_H * ratio;
      }
      const ctx = c.getContext('2d');
      if (!ctx) return;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, MAP_W, MAP_H);
      if (!nodes.length) return;
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
      const pad = 40;
      minX -= pad;
      minY -= pad;
      maxX += pad;
      maxY += pad;
      const scale = Math.min(MAP_W / (maxX - minX), MAP_H / (maxY - minY));
      const offX = (MAP_W - (maxX - minX) * scale) / 2;
      const offY = (MAP_H - (maxY - minY) * scale) / 2;
      frame.current = { minX, minY, scale, offX, offY };
      for (const n of nodes) {
        ctx.fillStyle = colorRef.current(n);
        const w = Math.max(1.5, (n.width ?? 0) * scale);
        const h = Math.max(1.5, (n.height ?? 0) * scale);
        ctx.fillRect((n.position.x - minX) * scale + offX, (n.position.y - minY) * scale + offY, w, h);
      }
      const s = flowStore.getState();
      placeRect(s.transform, { width: s.width, height: s.height });
    };
    draw(store.getState().nodes);
    return store.subscribe((state, prev) => {
      if (state.nodes !== prev.nodes) draw(state.nodes);
    });
  }, [store, flowStore]);

  useTransformListener(placeRect);

  // Click or drag on the map to move the view there.
  const moveTo = (e: ReactPointerEvent<HTMLDivElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const f = frame.current;
    const x = (e.clientX - box.left - f.offX) / f.scale + f.minX;
    const y = (e.clientY - box.top - f.offY) / f.scale + f.minY;
    void flow.setCenter(x, y, { zoom: flowStore.getState().transform[2] });
  };

  return (
    <div
      className="fast-minimap nodrag nopan"
      data-testid="minimap"
      onPointerDown={(e) => {
        e.currentTarget.setPointerCapture(e.pointerId);
        moveTo(e);
      }}
      onPointerMove={(e) => {
        if (e.buttons === 1) moveTo(e);
      }}
    >
      <canvas ref={canvas} style={{ width: MAP_W, height: MAP_H }} />
      <div className="fast-minimap-view" ref={rect} />
    </div>
  );
}

/**
 * Parent edges of a large graph as one SVG inside the viewport, drawn from the canvas
 * store. React Flow's own edges each subscribe to its store and recompute their geometry on
 * every frame of a pan; these are plain paths that a pan never touches.
 */
export function StaticEdges() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const readOnly = useEditor((s) => s.readOnly);
  const store = useEditorStore();
  const paths = useMemo(() => {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const out: { id: string; d: string; className: string; selected: boolean; mid: [number, number]; source: string; target: string }[] = [];
    for (const e of edges) {
      const s = byId.get(e.source);
      const t = byId.get(e.target);
      if (!s || !t) continue;
      const horizontal = s.data.direction === 'LR';
      const sw = s.width ?? 0;
      const sh = s.height ?? 0;
      const th = t.height ?? 0;
      const tw = t.width ?? 0;
      const [d, mx, my] = getBezierPath({
        sourceX: horizontal ? s.position.x + sw + 6 : s.position.x + sw / 2,
        sourceY: horizontal ? s.position.y + sh / 2 : s.position.y + sh + 6,
        targetX: horizontal ? t.position.x - 6 : t.position.x + tw / 2,
        targetY: horizontal ? t.position.y + th / 2 : t.position.y - 6,
        sourcePosition: horizontal ? Position.Right : Position.Bottom,
        targetPosition: horizontal ? Position.Left : Position.Top,
      });
      out.push({ id: e.id, d, className: e.className ?? '', selected: !!e.selected, mid: [mx, my], source: e.source, target: e.target });
    }
    return out;
  }, [nodes, edges]);
  const select = (id: string) => store.getState().onEdgesChange([{ type: 'select', id, selected: true }]);
  const chosen = paths.filter((p) => p.selected);
  return (
    <>
      <svg className="static-edges" aria-hidden="true">
        <defs>
          <marker id="static-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#94a3b8" />
          </marker>
        </defs>
        {paths.map((p) => (
          <EdgePath key={p.id} id={p.id} d={p.d} className={p.className} selected={p.selected} onSelect={select} />
        ))}
      </svg>
      {!readOnly
        ? chosen.map((p) => (
            <button
              key={p.id}
              type="button"
              className="edge-remove nodrag nopan"
              style={{ transform: `translate(-50%, -50%) translate(${p.mid[0]}px, ${p.mid[1]}px)` }}
              title={`Disconnect ${p.source} → ${p.target}`}
              onClick={() => store.getState().disconnect(p.source, p.target)}
            >
              ×
            </button>
          ))
        : null}
    </>
  );
}

const EdgePath = memo(function EdgePath({ id, d, className, selected, onSelect }: { id: string; d: string; className: string; selected: boolean; onSelect(id: string): void }) {
  return (
    <g className={`static-edge ${className}${selected ? ' selected' : ''}`} data-testid={`static-edge-${id}`}>
      <path className="static-edge-path" d={d} markerEnd="url(#static-arrow)" />
      <path className="static-edge-hit" d={d} onClick={() => onSelect(id)} />
    </g>
  );
});
