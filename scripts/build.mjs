// Bundles the server into one ESM file with a source map. The image ships only these two files.
import { build } from "esbuild";

await build({
  entryPoints: ["server/src/server.ts"],
  outfile: "server/dist/server.mjs",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  legalComments: "linked",
  // Some CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning",
});
