import { defineConfig } from "vite";

// Served by the API: dist/index.html at /dashboard/ and /portal/, dist/assets/* at /console/assets/.
export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // The API's CSP allows nothing inline: keep every asset a file, never a data: URL or inline module.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    proxy: { "/api": "http://127.0.0.1:8090" },
  },
});
