// The canvas benchmark hook: window.__trellisBench.pan({ms, zoom}) pans the viewport every
// animation frame and counts the frames the browser managed to draw. Used by
// tests/e2e/bench_canvas.py; only in the bench build (`npm run build:bench` →
// frontend/dist-bench), never in the production bundle (Canvas.tsx installs it only when
// import.meta.env.MODE is "bench").

import type { ReactFlowInstance } from '@xyflow/react';

import type { SequenceNode } from '../lib/graph';
import { graphBounds } from '../lib/viewport';

export interface PanResult {
  zoom: number;
  frames: number;
  seconds: number;
  fps: number;
  p95FrameMs: number;
  maxFrameMs: number;
  longFrames: number;
  renderedNodes: number;
}

declare global {
  interface Window {
    __trellisBench?: {
      pan(options?: { ms?: number; zoom?: number; speed?: number }): Promise<PanResult>;
      zoom(options?: { ms?: number; from?: number; to?: number }): Promise<PanResult>;
      nodeCount(): number;
    };
  }
}

/** Call `move(step)` every animation frame for `ms`, then report the frames drawn. */
function animate(ms: number, zoom: number, move: (step: number) => void): Promise<PanResult> {
  return new Promise<PanResult>((resolve) => {
    const frameTimes: number[] = [];
    let last = 0;
    let began = 0;
    let step = 0;
    const tick = (now: number): void => {
      frameTimes.push(now - last);
      last = now;
      step += 1;
      move(step);
      if (now - began < ms) {
        requestAnimationFrame(tick);
        return;
      }
      const seconds = (now - began) / 1000;
      const sorted = [...frameTimes].sort((a, b) => a - b);
      resolve({
        zoom,
        frames: frameTimes.length,
        seconds,
        fps: frameTimes.length / seconds,
        p95FrameMs: sorted[Math.floor(sorted.length * 0.95)] ?? 0,
        maxFrameMs: sorted[sorted.length - 1] ?? 0,
        longFrames: frameTimes.filter((t) => t > 50).length,
        renderedNodes: document.querySelectorAll('.react-flow__node').length,
      });
    };
    requestAnimationFrame((now) => {
      last = now;
      began = now;
      requestAnimationFrame(tick);
    });
  });
}

export function installBench(flow: ReactFlowInstance, allNodes: () => SequenceNode[]): () => void {
  window.__trellisBench = {
    nodeCount: () => allNodes().length,
    pan: async ({ ms = 3000, zoom, speed = 12 } = {}) => {
      if (zoom !== undefined) {
        // Centre the graph at that zoom, so the pan moves over cards, not empty space.
        const b = graphBounds(allNodes());
        await flow.setCenter(b.x + b.width / 2, b.y + b.height / 2, { zoom });
        // Let the cards for that zoom mount first: this measures the pan, not the switch.
        await new Promise((resolve) => setTimeout(resolve, 400));
        await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      }
      const start = flow.getViewport();
      const z = start.zoom;
      // Back and forth, diagonally, so culling keeps changing what is on screen.
      return animate(ms, z, (step) =>
        void flow.setViewport({ x: start.x - Math.sin(step / 90) * speed * 90, y: start.y - Math.cos(step / 120) * speed * 40, zoom: z }),
      );
    },
    zoom: ({ ms = 3000, from = 0.1, to = 1 } = {}) => {
      const start = flow.getViewport();
      const el = document.querySelector('.react-flow');
      const cx = (el?.clientWidth ?? 1000) / 2;
      const cy = (el?.clientHeight ?? 800) / 2;
      // Zoom in and out around the centre of the view.
      const fx = (cx - start.x) / start.zoom;
      const fy = (cy - start.y) / start.zoom;
      return animate(ms, to, (step) => {
        const t = (1 - Math.cos(step / 40)) / 2;
        const z = from + (to - from) * t;
        void flow.setViewport({ x: cx - fx * z, y: cy - fy * z, zoom: z });
      });
    },
  };
  return () => {
    delete window.__trellisBench;
  };
}
