/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

// The build goes into the Python package, so the wheel ships it and the gateway serves it.
const outDir = fileURLToPath(new URL('../src/pixelmill/services/web/static', import.meta.url))

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir,
    emptyOutDir: true,
    // CSP: no inline scripts or styles; every asset is a hashed file of this origin
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/v1': 'http://127.0.0.1:8000',
      '/healthz': 'http://127.0.0.1:8000',
      '/readyz': 'http://127.0.0.1:8000',
    },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.spec.ts'],
  },
})
