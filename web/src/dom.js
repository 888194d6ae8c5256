// Tiny DOM helpers shared by the loader and the panel (each bundle gets its own copy: a few
// hundred bytes, cheaper than a third request).

/** An element with an optional class and text. Text goes in as a text node, never as HTML. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** A 24×24 SVG icon from one path: built node by node, no markup string is parsed. */
export function icon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const shape = document.createElementNS(ns, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

/**
 * Add CSS to a shadow root. Constructable stylesheets (`adoptedStyleSheets`) are not subject to
 * the page's CSP `style-src`; browsers without them (Safari < 16.4) get a <style> element, which
 * a strict CSP allows only with `style-src 'unsafe-inline'` (or a hash).
 * Returns the CSSStyleSheet so callers can edit rules through the CSSOM later.
 */
export function adopt(root, css) {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    return sheet;
  } catch {
    const style = el("style", "", css);
    root.append(style);
    return style.sheet;
  }
}

/** localStorage that never throws (blocked cookies, Safari private mode, quota). */
export const storage = {
  get(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch {
      /* the conversation simply won't survive a reload */
    }
  },
};
