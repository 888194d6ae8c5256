// The operator console: sign-in, the header and its sections, live updates, keyboard shortcuts.
// Each section is a screen `{ render(main, arg, app) , onEvent?(event) }` chosen by the URL's
// hash (#inbox, #inbox/<id>, #orders...).

import { call, follow, useSession, whenSignedOut } from "./api.js";
import { $, field, h } from "./dom.js";
import { inbox } from "./inbox.js";
import { screens } from "./screens.js";
import { getLang, setLang, t } from "./strings.js";

const SECTIONS = ["inbox", "orders", "customers", "settings", "catalog", "campaigns", "jobs",
  "health", "audit"];
const ALL = { inbox, ...screens };
const JUMPS = { i: "inbox", o: "orders", c: "customers", s: "settings" };

const app = {
  me: null,
  screen: null,
  stopFollowing: null,
  announce(text) {
    const region = $("#announce");
    if (!region) return; // signed out meanwhile
    region.textContent = "";
    setTimeout(() => (region.textContent = text), 50); // read again even if the same text
  },
  refreshCounts: () => refreshCounts(),
  fail(error) {
    app.announce(t("error", error.message));
  },
};

const root = $("#app");

// --- sign-in -------------------------------------------------------------------------------

function signIn(message) {
  stopLive();
  useSession(null);
  app.me = null;
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", {
    type: "password", name: "password", autocomplete: "current-password", required: true,
  });
  const status = h("p", { class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, t("title")),
    field(t("email"), email),
    field(t("password"), password),
    status,
    h("button", { type: "submit" }, t("signin")),
    languageSwitch(() => signIn()),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      start(await call("login", { email: email.value, password: password.value }));
    } catch (error) {
      status.textContent = t(error.status === 429 ? "rate_limited" : "signin_failed");
    }
  });
  root.replaceChildren(h("main", { id: "main", class: "center" }, form));
  email.focus();
}

function languageSwitch(redraw) {
  const select = h(
    "select",
    { name: "lang", "aria-label": t("language"), value: getLang(), onchange: () => {
      setLang(select.value);
      redraw();
    } },
    h("option", { value: "fr", lang: "fr" }, "Français"),
    h("option", { value: "en", lang: "en" }, "English"),
  );
  return select;
}

// --- the signed-in shell -------------------------------------------------------------------

function start(session) {
  app.me = useSession(session);
  drawShell();
  startLive();
}

function drawShell() {
  const links = SECTIONS.map((name) =>
    h("li", null, h(
      "a",
      { href: `#${name}`, "data-section": name },
      t(name),
      name === "inbox" ? [
        h("span", { class: "badge unread", hidden: true, title: t("unread") }),
        h("span", { class: "badge human", hidden: true, title: t("needs_human") }),
      ] : null,
    )),
  );
  const signOut = h("button", { type: "button", class: "quiet", onclick: async () => {
    await call("logout", {}).catch(() => {});
    history.replaceState(null, "", location.pathname);
    signIn();
  } }, t("signout"));
  root.replaceChildren(
    h("a", { class: "skip", href: "#main", onclick: (e) => {
      e.preventDefault();
      $("#main").focus();
    } }, t("skip")),
    h(
      "header",
      { class: "top" },
      h("p", { class: "brand" }, "Comptoir", h("span", null, app.me.shop_name || app.me.shop)),
      h("nav", { "aria-label": t("nav") }, h("ul", null, links)),
      h("div", { class: "tools" }, h("span", { class: "who" }, app.me.email),
        languageSwitch(() => {
          drawShell();
        }), signOut),
    ),
    h("main", { id: "main", tabindex: "-1" }),
    h("div", { id: "announce", class: "sr-only", "aria-live": "polite", role: "status" }),
    helpDialog(),
  );
  document.title = t("title");
  refreshCounts();
  route();
}

function route() {
  if (!app.me) return;
  const [name, ...rest] = location.hash.slice(1).split("/");
  const screenName = ALL[name] ? name : "inbox";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.section === screenName) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = $("#main");
  main.replaceChildren();
  app.screen = ALL[screenName];
  Promise.resolve(app.screen.render(main, decodeURIComponent(rest.join("/")), app)).catch(app.fail);
}

// --- live ----------------------------------------------------------------------------------

let countsTimer = 0;

/** The inbox badges: how many conversations are unread, how many wait for a person. */
function refreshCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(async () => {
    try {
      const [unread, human] = await Promise.all([
        call("conversations?unread=1"),
        call("conversations?needs_human=1"),
      ]);
      setBadge(".badge.unread", unread.conversations.length, "unread");
      setBadge(".badge.human", human.conversations.length, "needs_human");
    } catch {}
  }, 150);
}

function setBadge(selector, count, label) {
  const badge = $(selector);
  if (!badge) return;
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} ${t(label)}`);
}

function startLive() {
  stopLive();
  app.stopFollowing = follow((event) => {
    if (event.conversation_id || event.kind === "sync") refreshCounts();
    if (event.kind === "message_in" || event.kind === "handoff") app.announce(t("new_message"));
    if (app.screen && app.screen.onEvent) app.screen.onEvent(event);
  });
}

function stopLive() {
  if (app.stopFollowing) app.stopFollowing();
  app.stopFollowing = null;
}

// --- keyboard ------------------------------------------------------------------------------

function helpDialog() {
  const keys = [["g i", "k_inbox"], ["g o", "k_orders"], ["g c", "k_customers"],
    ["g s", "k_settings"], ["/", "k_search"], ["r", "k_reply"], ["Ctrl+Enter", "k_send"],
    ["?", "k_help"]];
  const dialog = h(
    "dialog",
    { id: "help", "aria-labelledby": "help-title" },
    h("h2", { id: "help-title" }, t("shortcuts")),
    h("dl", null, keys.map(([key, what]) => [h("dt", null, h("kbd", null, key)), h("dd", null, t(what))])),
    h("form", { method: "dialog" }, h("button", null, t("close"))),
  );
  return dialog;
}

let pendingG = 0;
document.addEventListener("keydown", (event) => {
  if (!app.me || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]") || $("#help").open) return;
  const key = event.key;
  if (pendingG && JUMPS[key]) {
    pendingG = 0;
    location.hash = JUMPS[key];
    event.preventDefault();
    return;
  }
  pendingG = key === "g" ? setTimeout(() => (pendingG = 0), 1500) : 0;
  const focus = (selector) => {
    const el = $(selector);
    if (el) {
      el.focus();
      event.preventDefault();
    }
  };
  if (key === "/") focus("main input[type=search]");
  else if (key === "r") focus("#reply");
  else if (key === "?") {
    $("#help").showModal();
    event.preventDefault();
  }
});

// A sign-in link opened in a tab where the console already is: only the hash changes.
window.addEventListener("hashchange", () => (location.hash.startsWith("#link=") ? boot() : route()));
whenSignedOut(() => signIn());

// --- start: a sign-in link in the URL, or the session's cookie ------------------------------

async function boot() {
  document.documentElement.lang = getLang();
  const link = /^#link=([^&]+)/.exec(location.hash);
  if (link) {
    // The token is used once: out of the address bar and the history at once.
    history.replaceState(null, "", location.pathname + location.search + "#inbox");
    try {
      return start(await call("login/link", { token: decodeURIComponent(link[1]) }));
    } catch (error) {
      return signIn(t(error.status === 429 ? "rate_limited" : "link_failed"));
    }
  }
  try {
    start(await call("me"));
  } catch (error) {
    if (error.status !== 401) signIn(); // a 401 has shown the sign-in screen already
  }
}

boot();
