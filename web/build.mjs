// Build the shop widget: web/src → web/dist (minified with esbuild).
//
//   node web/build.mjs
//
// Writes:
//   web/dist/panel.<hash>.js  the panel, named by its content: cache it for a year
//   web/dist/widget.js        the loader (what the shop's script tag points to): cache briefly
//   web/widget.js             the same loader for the old path /widget.js (panel under dist/)
//   web/dist/manifest.json    web/dist's files (paths relative to it) with their size, gzipped
//                             size, Content-Type and Cache-Control, for the size checks
// web/dist is what `python -m shared publish-web` uploads: the loader finds the panel next to
// itself, whatever the bucket prefix.
// CSS files imported by the sources are minified and inlined as strings.

import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const WEB = dirname(fileURLToPath(import.meta.url));
const SRC = join(WEB, "src");
const DIST = join(WEB, "dist");
// Browsers with shadow DOM, fetch streams and replaceChildren (2020-2021 and later).
const TARGET = ["es2020", "chrome87", "firefox78", "safari15", "edge87"];
const JS = "text/javascript; charset=utf-8";
const SHORT = "public, max-age=300"; // a new release reaches every shop within 5 minutes
const FOREVER = "public, max-age=31536000, immutable";
export const BUDGET = { beforeOpen: 12_000, total: 20_000 }; // gzipped bytes

// `import css from "./x.css"` → the minified stylesheet as a string.
const cssAsText = {
  name: "css-as-text",
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const { code } = await esbuild.transform(source, {
        loader: "css",
        minify: true,
        target: TARGET.filter((t) => !t.startsWith("es")),
      });
      return { contents: `export default ${JSON.stringify(code.trim())};`, loader: "js" };
    });
  },
};

async function bundle(entry, define = {}) {
  const result = await esbuild.build({
    entryPoints: [join(SRC, entry)],
    bundle: true,
    minify: true,
    format: "iife",
    target: TARGET,
    charset: "utf8",
    legalComments: "none",
    define,
    plugins: [cssAsText],
    write: false,
    logLevel: "warning",
  });
  return Buffer.from(result.outputFiles[0].contents);
}

export async function build() {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });

  const panel = await bundle("panel.js");
  const panelName = `panel.${createHash("sha256").update(panel).digest("hex").slice(0, 10)}.js`;
  // The loader finds the panel relative to its own URL, so the same build works on any CDN.
  const loader = await bundle("loader.js", { __PANEL_FILE__: JSON.stringify(panelName) });
  const rootLoader = await bundle("loader.js", {
    __PANEL_FILE__: JSON.stringify("dist/" + panelName),
  });

  // The old path /widget.js (the dev server serves web/): the same loader, panel under dist/.
  writeFileSync(join(WEB, "widget.js"), rootLoader);

  // web/dist is what gets published, as is: the manifest describes it with paths relative to it.
  const outputs = [
    [panelName, panel, FOREVER],
    ["widget.js", loader, SHORT],
  ];
  const files = {};
  for (const [name, content, cacheControl] of outputs) {
    writeFileSync(join(DIST, name), content);
    files[name] = {
      bytes: content.length,
      gzip: gzipSync(content, { level: 9 }).length,
      content_type: JS,
      cache_control: cacheControl,
    };
  }
  const manifest = {
    loader: "widget.js",
    panel: panelName,
    budget_gzip: { before_open: BUDGET.beforeOpen, total: BUDGET.total },
    files,
  };
  writeFileSync(join(DIST, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const manifest = await build();
  const loader = manifest.files[manifest.loader].gzip;
  const panel = manifest.files[manifest.panel].gzip;
  console.log(`web/dist/${manifest.loader}  ${loader} B gzipped (before the panel opens)`);
  console.log(`web/dist/${manifest.panel}  ${panel} B gzipped`);
  const budgets = `${BUDGET.beforeOpen} before opening / ${BUDGET.total} in all`;
  console.log(`total ${loader + panel} B gzipped (budgets: ${budgets})`);
  if (loader > BUDGET.beforeOpen || loader + panel > BUDGET.total) {
    console.error("over the size budget");
    process.exit(1);
  }
}
