// Comptoir widget loader: the one file a shop's <script> tag points to.
//
// It stays small because every page of the shop loads it: read the tag's attributes, draw the
// launcher bubble in a shadow root, and only when the shopper opens it load the panel bundle
// (content-hashed, cached for a year). No eval, no inline script, no style attribute.

import css from "./launcher.css";
import { adopt, el, icon, storage } from "./dom.js";

// Replaced at build time by the panel's content-hashed file name, relative to this file.
/* global __PANEL_FILE__ */
const PANEL_FILE = __PANEL_FILE__;

const CHAT_ICON =
  "M12 3C6.5 3 2 6.6 2 11c0 2.4 1.3 4.6 3.4 6.1L4.6 21l4.2-2.3c1 .3 2.1.4 3.2.4 5.5 0 10-3.6 10-8.1S17.5 3 12 3z";
const STRINGS = {
  fr: {
    open: "Ouvrir la discussion avec ",
    unread: (n) => (n > 1 ? `, ${n} nouveaux messages` : ", 1 nouveau message"),
  },
  en: {
    open: "Open chat with ",
    unread: (n) => (n > 1 ? `, ${n} new messages` : ", 1 new message"),
  },
};

// document.currentScript only exists while this file first runs: read it now. The fallback
// covers a tag injected by a tag manager that runs us later.
const script =
  document.currentScript || document.querySelector("script[data-shop][src*='widget']");

function start() {
  if (!script || document.querySelector("comptoir-chat")) return; // pasted twice: one widget
  const attr = (name) => (script.getAttribute("data-" + name) || "").trim();
  const wanted = (attr("lang") || navigator.language || "fr").slice(0, 2).toLowerCase();
  const lang = wanted === "fr" ? "fr" : "en";
  const strings = STRINGS[lang];
  const config = {
    api: attr("api").replace(/\/+$/, ""), // "" means the page's own origin
    shop: attr("shop") || null,
    title: attr("title") || "Assistant",
    greeting: attr("greeting"),
    lang,
    storageKey: "comptoir:" + (attr("shop") || "default") + ":",
  };
  const color = attr("color");
  const left = attr("position") === "left";

  // A custom element name (never defined) matches none of the theme's `div`/`button` rules.
  const host = document.createElement("comptoir-chat");
  const root = host.attachShadow({ mode: "open" });
  adopt(root, css);
  // Per-shop values as custom properties, set through the CSSOM (no CSS text is built from
  // attributes, so a stray quote in data-color cannot inject rules).
  // Important, as custom properties are inherited and a theme's `* {--x: … !important}` would
  // otherwise reach them.
  const rule = adopt(root, ":host{}").cssRules[0].style;
  const set = (name, value) => rule.setProperty("--cpt-" + name, value, "important");
  set("color", window.CSS && CSS.supports("color", color) ? color : "#2b2118");
  set("left", left ? "20px" : "auto");
  set("right", left ? "auto" : "20px");
  set("lift", "0px");

  const launcher = el("button", "launch");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-haspopup", "dialog");
  const badge = el("span", "badge");
  badge.setAttribute("aria-hidden", "true");
  launcher.append(icon(CHAT_ICON), badge);
  root.append(launcher);
  // After <body>, as the last child of <html>: a theme's `body { transform }` (page transitions)
  // would otherwise become the containing block of our fixed elements.
  document.documentElement.append(host);

  let unread = 0;
  const setUnread = (n) => {
    unread = n;
    badge.textContent = n;
    badge.hidden = !n;
    launcher.setAttribute("aria-label", strings.open + config.title + (n ? strings.unread(n) : ""));
  };
  setUnread(0);

  // Keep clear of the page's own sticky bars ("Add to cart", cookie banners) at the bottom:
  // lift the launcher above any fixed or sticky element under it. Moved by transform, so the
  // page's layout never shifts; re-checked when the page scrolls or resizes.
  let lift = 0;
  const dodge = () => {
    const box = launcher.getBoundingClientRect();
    const top = box.top + lift;
    const bottom = box.bottom + lift;
    // Every page element stacked under the launcher's corners and middle (ours is reported as
    // the host: skipped), each looked at once.
    const under = new Set();
    for (const x of [box.left + 4, box.left + box.width / 2, box.right - 4]) {
      for (const y of [top + 4, bottom - 4]) {
        for (const node of document.elementsFromPoint(x, y)) if (node !== host) under.add(node);
      }
    }
    let need = 0;
    for (const node of under) {
      if (!/fixed|sticky/.test(getComputedStyle(node).position)) continue;
      const bar = node.getBoundingClientRect();
      // A full-screen overlay is not a bar to sit above.
      if (bar.height < innerHeight / 3) need = Math.max(need, Math.ceil(bottom - bar.top + 12));
    }
    if (need !== lift) set("lift", (lift = need) + "px");
  };
  // Placed before the first frame (this reads layout the first frame needs anyway), so the
  // launcher never shows in the wrong place; measured: deferring this to an animation frame
  // saves no main-thread time and shows the launcher ~50 ms later.
  const rgb = getComputedStyle(launcher).backgroundColor.match(/[\d.]+/g) || [];
  const [r, g, b] = rgb.map(Number);
  // White or near-black text on the shop's colour, whichever reads better.
  set("on-color", 0.299 * r + 0.587 * g + 0.114 * b > 160 ? "#1f1d1a" : "#fff");
  dodge();
  requestAnimationFrame(() => {
    // A greeting the shopper has not seen yet counts as one unread message. (The first
    // localStorage read of a tab can take milliseconds: kept off the page's loading path.)
    if (config.greeting && !storage.get(config.storageKey + "seen") && !unread) setUnread(1);
    launcher.classList.add("moves"); // animate later lifts, not the first placement
  });
  let timer;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(dodge, 150);
  };
  addEventListener("scroll", later, { passive: true });
  addEventListener("resize", later);
  addEventListener("load", later);

  // The panel bundle: fetched on first open (or on hover, a head start), built on first open.
  let loading;
  let panel;
  const load = () =>
    (loading ||= new Promise((resolve, reject) => {
      const tag = el("script");
      tag.src = context.panelUrl;
      document.addEventListener("comptoir:panel", (event) => resolve(event.detail), { once: true });
      tag.onerror = () => {
        loading = null; // try again on the next click
        tag.remove();
        reject(new Error("panel failed to load"));
      };
      root.append(tag); // inside our shadow root: the page's own DOM stays untouched
    }));
  const context = {
    config,
    root,
    panelUrl: new URL(PANEL_FILE, script.src).href, // the panel's own files sit next to it
    launcher,
    adopt: (text) => adopt(root, text),
    seen: () => storage.set(config.storageKey + "seen", "1"),
    get unread() {
      return unread;
    },
    setUnread,
  };
  launcher.addEventListener("pointerenter", () => load().catch(() => {}), { once: true });
  launcher.addEventListener("click", async () => {
    if (panel) return panel.toggle();
    launcher.setAttribute("aria-busy", "true");
    try {
      const mount = await load();
      panel ||= mount(context);
      panel.open();
    } catch {
      /* offline: the launcher stays, the next click retries */
    } finally {
      launcher.removeAttribute("aria-busy");
    }
  });
}

// With `defer` the document is parsed already; with `async` or a late injection it may not be.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
