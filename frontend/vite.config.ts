/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built files are served by Django (whitenoise) under /static/; templates find the hashed
// entry through dist/.vite/manifest.json (designer/templatetags/vite.py).
export default defineConfig({
  base: '/static/',
  plugins: [react()],
  build: {
    outDir: 'dist',
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
});
