/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

// The build goes into the Python package, so the wheel ships it and the gateway serves it.
const outDir = fileURLToPath(new URL('../src/pixelmill/services/web/static', import.meta.url))

// OpenSeadragon injects a <style> element (a focus rule for touch screens), which a strict
// CSP (style-src 'self') blocks with a console error. The rule is in src/style.css instead,
// and this takes the injection out of the bundle; the build fails if the code moved.
const OSD_STYLE = "if (!document.querySelector('style[data-openseadragon-mobile-css]'))"
function openseadragonWithoutInlineStyle(): Plugin {
  return {
    name: 'openseadragon-without-inline-style',
    transform(code, id) {
      if (!/openseadragon[\\/]build[\\/]openseadragon[\\/]openseadragon\.js$/.test(id)) return null
      if (!code.includes(OSD_STYLE)) this.error('OpenSeadragon no longer has the expected <style> injection: check the CSP')
      return { code: code.replace(OSD_STYLE, 'if (false)'), map: null }
    },
  }
}

export default defineConfig({
  plugins: [vue(), openseadragonWithoutInlineStyle()],
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
