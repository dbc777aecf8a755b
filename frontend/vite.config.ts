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
    rollupOptions: { input: 'src/main.tsx' },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
