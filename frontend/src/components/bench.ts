// The canvas benchmark hook: window.__trellisBench.pan({ms, zoom}) pans the viewport every
// animation frame and counts the frames the browser managed to draw. Used by
// tests/e2e/bench_canvas.py; harmless otherwise (it only reads and moves the viewport).

import type { ReactFlowInstance } from '@xyflow/react';

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
      nodeCount(): number;
    };
  }
}

export function installBench(flow: ReactFlowInstance): () => void {
  window.__trellisBench = {
    nodeCount: () => flow.getNodes().length,
    pan: ({ ms = 3000, zoom, speed = 12 } = {}) =>
      new Promise<PanResult>((resolve) => {
        const start = flow.getViewport();
        const z = zoom ?? start.zoom;
        void flow.setViewport({ x: start.x, y: start.y, zoom: z });
        const frameTimes: number[] = [];
        let last = performance.now();
        let began = last;
        let step = 0;
        const tick = (now: number): void => {
          frameTimes.push(now - last);
          last = now;
          step += 1;
          // Back and forth, diagonally, so culling keeps changing what is on screen.
          const phase = Math.sin(step / 90);
          void flow.setViewport({ x: start.x - phase * speed * 90, y: start.y - Math.cos(step / 120) * speed * 40, zoom: z });
          if (now - began < ms) {
            requestAnimationFrame(tick);
            return;
          }
          const seconds = (now - began) / 1000;
          const sorted = [...frameTimes].sort((a, b) => a - b);
          resolve({
            zoom: z,
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
      }),
  };
  return () => {
    delete window.__trellisBench;
  };
}
