// Build the shop widget (web/src) and the operator console (web/admin) into web/dist,
// minified with esbuild.
//
//   node web/build.mjs
//
// Writes:
//   web/dist/panel.<hash>.js  the panel, named by its content: cache it for a year
//   web/dist/voice.<hash>.js  the live voice call, loaded by the panel only when the shopper
//                             presses the microphone (its own budget); cached a year too
//   web/dist/widget.js        the loader (what the shop's script tag points to): cache briefly
//   web/widget.js             the same loader for the old path /widget.js (panel under dist/)
//   web/dist/admin/           the console: index.html naming console.<hash>.js and .css
//   web/dist/manifest.json    web/dist's files (paths relative to it) with their size, gzipped
//                             size, Content-Type and Cache-Control, for the size checks; the
//                             console's under "admin"
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
const ADMIN = join(WEB, "admin");
const DIST = join(WEB, "dist");
// Browsers with shadow DOM, fetch streams and replaceChildren (2020-2021 and later).
const TARGET = ["es2020", "chrome87", "firefox78", "safari15", "edge87"];
const JS = "text/javascript; charset=utf-8";
const SHORT = "public, max-age=300"; // a new release reaches every shop within 5 minutes
const FOREVER = "public, max-age=31536000, immutable";
// gzipped bytes; the voice module is not in `total`: only a shopper who calls fetches it
export const BUDGET = { beforeOpen: 12_000, total: 20_000, voice: 6_000 };
export const CONSOLE_BUDGET = 25_000; // gzipped bytes: the console's page, script and styles

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

async function bundle(entry, define = {}, format = "iife") {
  const result = await esbuild.build({
    entryPoints: [entry.includes("/") ? entry : join(SRC, entry)],
    bundle: true,
    minify: true,
    format,
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

const hashed = (stem, content, ext) =>
  `${stem}.${createHash("sha256").update(content).digest("hex").slice(0, 10)}.${ext}`;

function describe(content, contentType, cacheControl) {
  return {
    bytes: content.length,
    gzip: gzipSync(content, { level: 9 }).length,
    content_type: contentType,
    cache_control: cacheControl,
  };
}

// The console: one ES module bundle and one stylesheet, named by their content, and its page
// (kept briefly) pointing at them. The page's CSP allows only its own origin's files.
async function buildConsole() {
  const script = await bundle(join(ADMIN, "console.js"), {}, "esm");
  const css = await esbuild.build({
    entryPoints: [join(ADMIN, "console.css")],
    minify: true,
    target: TARGET.filter((t) => !t.startsWith("es")),
    write: false,
    logLevel: "warning",
  });
  const style = Buffer.from(css.outputFiles[0].contents);
  const scriptName = hashed("console", script, "js");
  const styleName = hashed("console", style, "css");
  const page = (await readFile(join(ADMIN, "index.html"), "utf8"))
    .replace('href="console.css"', `href="${styleName}"`)
    .replace('src="console.js"', `src="${scriptName}"`);
  if (!page.includes(scriptName) || !page.includes(styleName)) {
    throw new Error("web/admin/index.html must name console.js and console.css");
  }
  const outputs = [
    [scriptName, script, JS, FOREVER],
    [styleName, style, "text/css; charset=utf-8", FOREVER],
    ["index.html", Buffer.from(page), "text/html; charset=utf-8", SHORT],
  ];
  mkdirSync(join(DIST, "admin"), { recursive: true });
  const files = {};
  for (const [name, content, contentType, cacheControl] of outputs) {
    writeFileSync(join(DIST, "admin", name), content);
    files[`admin/${name}`] = describe(content, contentType, cacheControl);
  }
  return {
    index: "admin/index.html",
    script: `admin/${scriptName}`,
    style: `admin/${styleName}`,
    budget_gzip: CONSOLE_BUDGET,
    files,
  };
}

export async function build() {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });

  const voice = await bundle("voice.js");
  const voiceName = hashed("voice", voice, "js");
  // The panel finds the voice module next to its own file, so it names it relative to itself.
  const panel = await bundle("panel.js", { __VOICE_FILE__: JSON.stringify(voiceName) });
  const panelName = hashed("panel", panel, "js");
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
    [voiceName, voice, FOREVER],
    ["widget.js", loader, SHORT],
  ];
  const files = {};
  for (const [name, content, cacheControl] of outputs) {
    writeFileSync(join(DIST, name), content);
    files[name] = describe(content, JS, cacheControl);
  }
  const manifest = {
    loader: "widget.js",
    panel: panelName,
    voice: voiceName,
    budget_gzip: { before_open: BUDGET.beforeOpen, total: BUDGET.total, voice: BUDGET.voice },
    files,
    admin: await buildConsole(),
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
  const voice = manifest.files[manifest.voice].gzip;
  console.log(`web/dist/${manifest.voice}  ${voice} B gzipped (budget: ${BUDGET.voice})`);
  const admin = manifest.admin;
  const consoleGzip = Object.values(admin.files).reduce((sum, file) => sum + file.gzip, 0);
  for (const [name, file] of Object.entries(admin.files)) {
    console.log(`web/dist/${name}  ${file.gzip} B gzipped`);
  }
  console.log(`console ${consoleGzip} B gzipped (budget: ${CONSOLE_BUDGET})`);
  const overConsole = consoleGzip > CONSOLE_BUDGET;
  const overWidget = loader > BUDGET.beforeOpen || loader + panel > BUDGET.total;
  if (overWidget || voice > BUDGET.voice || overConsole) {
    console.error("over the size budget");
    process.exit(1);
  }
}
