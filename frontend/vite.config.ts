/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built files are served by Django (whitenoise) under /static/; templates find the hashed
// entry through dist/.vite/manifest.json (designer/templatetags/vite.py).
// `vite build --mode bench` (npm run build:bench) is the production bundle plus the canvas
// benchmark hook (components/bench.ts), in dist-bench: the canvas benchmark serves it.
export default defineConfig(({ mode }) => ({
  base: '/static/',
  plugins: [react()],
  build: {
    outDir: mode === 'bench' ? 'dist-bench' : 'dist',
    emptyOutDir: true,
    manifest: true,
    // elkjs (~1.5 MB) is its own chunk, loaded only when auto-layout is asked for.
    chunkSizeWarningLimit: 1600,
    rollupOptions: { input: 'src/main.tsx' },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
}));
