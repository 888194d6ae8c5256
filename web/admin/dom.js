// DOM helpers: elements are built from nodes and text only (never parsed HTML), so a server's
// or a customer's text can never become markup.

/** h("button", {class: "x", onclick}, "text", child) -> the element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [name, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (name === "value") value = v; // after the children: a <select> needs its options first
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), v);
    else if (name === "class") el.className = v;
    else el.setAttribute(name, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  if (value !== undefined) el.value = value;
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let ids = 0;
/** A fresh id, for label/aria links. */
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A labelled form field: the label, the control and the place for its error message. */
export function field(label, control, hint) {
  control.id ||= uid("f");
  const error = h("p", { class: "error", id: `${control.id}-error`, role: "alert", hidden: true });
  control.setAttribute("aria-describedby", error.id);
  return h(
    "div",
    { class: "field", "data-field": control.name || null },
    h("label", { for: control.id }, label),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
    error,
  );
}

/** Show (or clear, with "") a field's error message. */
export function setError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (!error) return;
  error.textContent = message;
  error.hidden = !message;
  control.toggleAttribute("aria-invalid", Boolean(message));
}

// Replace el's children with the given ones, skipping the absent (null, false) as h() does.
export function fill(el, ...children) {
  el.replaceChildren(...children.filter((child) => child != null && child !== false));
}
