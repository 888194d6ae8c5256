// Comptoir chat panel: loaded by the loader on first open (content-hashed file, cached a year).
//
// It hands its `mount` function to the loader through a DOM event rather than a global, then
// builds the dialog inside the loader's shadow root on first open.

import css from "./panel.css";
import { sendMessage, history } from "./api.js";
import { productCards } from "./cards.js";
import { el, icon, storage } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { STRINGS } from "./strings.js";

const CLOSE_ICON =
  "M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 0 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z";
const SEND_ICON = "M3.4 20.4 21 12 3.4 3.6 3.4 10.2 16 12 3.4 13.8z";
const MIC_ICON =
  "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z";
// Replaced at build time by the voice module's content-hashed file name (next to the panel).
/* global __VOICE_FILE__ */
const VOICE_FILE = __VOICE_FILE__;
const FOCUSABLE = "button:not(:disabled), a[href], textarea, [tabindex='0']";
const POLL_MS = 4000; // while a person of the shop has the conversation

function mount(ctx) {
  const { config, root, launcher } = ctx;
  const t = STRINGS[config.lang];
  const sessionKey = config.storageKey + "session";
  const fullScreen = matchMedia("(max-width: 480px)");
  const colon = config.lang === "fr" ? " : " : ": ";
  ctx.adopt(css);

  // --- the dialog --------------------------------------------------------------------------
  const dialog = el("div", "panel");
  dialog.id = "cpt-panel";
  dialog.hidden = true;
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("aria-labelledby", "cpt-title");
  launcher.setAttribute("aria-controls", "cpt-panel");

  const head = el("div", "head");
  const who = el("div", "who");
  const name = el("h2", "name", config.title);
  name.id = "cpt-title";
  who.append(name, el("p", "sub", t.subtitle));
  const closeButton = button("close", icon(CLOSE_ICON), t.close);
  head.append(who, closeButton);

  // Not a live region itself: streamed text would be read piece by piece. Finished replies are
  // announced once through `live` below.
  const log = el("div", "log");
  log.tabIndex = 0; // scrollable with the keyboard
  log.setAttribute("role", "region");
  log.setAttribute("aria-label", t.conversation);
  const past = el("div", "past"); // the restored history goes here, above new messages
  log.append(bubble("assistant", config.greeting || t.greeting), past);

  const note = el("p", "note"); // notices: rate limit, offline, too long
  note.setAttribute("role", "status");
  note.hidden = true;

  const form = el("form", "form");
  const input = el("textarea");
  input.rows = 1;
  input.maxLength = 4000;
  input.placeholder = t.placeholder;
  input.setAttribute("aria-label", t.placeholder);
  input.enterKeyHint = "send";
  const sendButton = button("send", icon(SEND_ICON), t.send);
  sendButton.type = "submit";
  // Shown only once the server says the shop takes voice calls (GET /chat/history, POST /chat).
  const micButton = button("mic", icon(MIC_ICON), t.talk);
  micButton.hidden = true;
  form.append(input, micButton, sendButton);

  const live = el("div", "sr");
  live.setAttribute("aria-live", "polite");

  dialog.append(head, log, note, form, live);
  root.append(dialog);

  // --- messages ----------------------------------------------------------------------------
  function bubble(role, text) {
    const node = el("div", "msg " + role);
    if (role === "assistant") renderMarkdown(node, text);
    else node.textContent = text;
    return node;
  }

  // A reply written by a person of the shop, labelled as such.
  function operatorBubble(text) {
    const node = bubble("assistant", text);
    node.prepend(el("span", "by", t.adviser));
    return node;
  }

  // Apply a change to the conversation; follow it down only if the shopper was reading the
  // bottom already (not if they scrolled up to reread something).
  function show(change) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    change();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function notice(text) {
    note.textContent = text || "";
    note.hidden = !text;
  }

  let busy = false;

  async function deliver(mine, text) {
    busy = true;
    notice();
    const reply = el("div", "msg assistant typing");
    reply.setAttribute("role", "img");
    reply.setAttribute("aria-label", t.typing);
    reply.append(el("i"), el("i"), el("i"));
    show(() => log.append(reply));
    const streaming = () => {
      reply.className = "msg assistant";
      reply.removeAttribute("role");
      reply.removeAttribute("aria-label");
    };
    try {
      const answer = await sendMessage(config, storage.get(sessionKey), text, (soFar) => {
        show(() => {
          streaming();
          reply.setAttribute("aria-busy", "true");
          renderMarkdown(reply, soFar);
        });
      });
      storage.set(sessionKey, answer.session_id);
      follow(answer.state);
      voiceAllowed(answer.voice);
      streaming();
      reply.removeAttribute("aria-busy");
      if (!answer.reply) {
        reply.remove(); // handed over to a person: the bot stays silent
        return;
      }
      show(() => {
        renderMarkdown(reply, answer.reply);
        const cards = productCards(answer.products, t, answer.lang);
        reply.after(...[cards, payButton(answer.payment, t)].filter(Boolean));
      });
      live.textContent = config.title + colon + answer.reply.replace(/\*\*/g, "");
      if (!isOpen) ctx.setUnread(ctx.unread + 1);
    } catch (error) {
      reply.remove();
      failed(mine, text, error);
    } finally {
      busy = false;
    }
  }

  // Nothing typed is lost: the message stays, marked, with a Retry button.
  function failed(mine, text, error) {
    mine.classList.add("failed");
    const row = el("div", "fail", t.failed + " ");
    const retry = button("", null, null, t.retry);
    retry.addEventListener("click", () => {
      if (busy) return; // one message in flight at a time
      row.remove();
      mine.classList.remove("failed");
      input.focus(); // the focused button is gone: keep the keyboard user in the panel
      deliver(mine, text);
    });
    row.append(retry);
    show(() => mine.after(row));
    const status = error.status;
    if (status === 413) input.value ||= text; // to shorten it
    notice(
      status === 429
        ? t.busy(error.retryAfter || 60)
        : status === 413
          ? t.tooLong
          : status === 0
            ? t.offline
            : t.unavailable,
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return; // while a reply streams, the text simply waits in the field
    input.value = "";
    const mine = bubble("user", text);
    log.append(mine);
    log.scrollTop = log.scrollHeight; // one's own message always comes into view
    deliver(mine, text);
  });
  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line; not while an IME is composing a character.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : sendButton.click();
    }
  });

  // --- history ---------------------------------------------------------------------------
  const shown = new Set(); // the stored messages on screen, by id: an operator's reply shows once
  let lastId = null;
  let human = false; // a person of the shop has the conversation: ask for their replies
  let timer = 0;

  async function restore() {
    const sessionId = storage.get(sessionKey);
    if (!sessionId) return;
    try {
      const { state, messages, voice } = await history(config, sessionId);
      voiceAllowed(voice);
      for (const { id, role, author, text, products, lang, payment } of messages) {
        shown.add(id);
        lastId = id || lastId;
        if (!text) continue;
        const mine = role === "user";
        past.append(
          author === "operator" ? operatorBubble(text) : bubble(mine ? "user" : "assistant", text),
        );
        const cards = !mine && productCards(products, t, lang); // a reply's, as it showed them
        past.append(...[cards, !mine && payButton(payment, t)].filter(Boolean));
      }
      log.scrollTop = log.scrollHeight;
      follow(state);
    } catch (error) {
      if (error.status === 404) storage.set(sessionKey, null); // expired: start afresh
    }
  }

  // While the conversation is with the shop, poll for newer messages every few seconds, only
  // while the panel is open and the page visible; back with the bot, stop.
  function follow(state) {
    if (state) human = state === "human";
    clearTimeout(timer);
    if (human && isOpen && document.visibilityState === "visible") {
      timer = setTimeout(check, POLL_MS);
    }
  }

  async function check() {
    const sessionId = storage.get(sessionKey);
    if (!sessionId) return;
    let state;
    try {
      const newer = await history(config, sessionId, lastId);
      state = newer.state;
      for (const { id, author, text } of newer.messages) {
        lastId = id;
        if (author !== "operator" || shown.has(id)) continue; // the shopper's own are on screen
        shown.add(id);
        show(() => log.append(operatorBubble(text)));
        live.textContent = t.adviser + colon + text;
      }
    } catch {
      /* offline or busy: ask again at the next tick */
    }
    follow(state);
  }
  document.addEventListener("visibilitychange", () => follow());

  // --- voice call --------------------------------------------------------------------------
  // voice.js is fetched only when the mic is first pressed: a shop without voice, or a shopper
  // who never calls, downloads none of it.
  let voiceModule;
  let call = null;

  function voiceAllowed(on) {
    if (on !== undefined) micButton.hidden = !on || !!call;
  }

  const loadVoice = () =>
    (voiceModule ||= new Promise((resolve, reject) => {
      const tag = el("script");
      tag.src = new URL(VOICE_FILE, ctx.panelUrl).href;
      document.addEventListener("comptoir:voice", (event) => resolve(event.detail), { once: true });
      tag.onerror = () => {
        voiceModule = null; // the next press tries again
        tag.remove();
        reject(new Error("voice failed to load"));
      };
      root.append(tag);
    }));

  micButton.addEventListener("click", async () => {
    if (call) return;
    notice();
    micButton.disabled = true;
    let startCall;
    try {
      startCall = await loadVoice();
    } catch {
      micButton.disabled = false;
      notice(t.voiceFailed);
      return;
    }
    micButton.hidden = true;
    micButton.disabled = false;
    call = startCall({
      config,
      t,
      sessionId: storage.get(sessionKey),
      adopt: ctx.adopt,
      place: (node) => form.before(node),
      caption: (role) => {
        const node = bubble(role, "");
        show(() => log.append(node));
        return node;
      },
      notice,
      onSession: (id) => storage.set(sessionKey, id),
      onEnd: () => {
        call = null;
        micButton.hidden = false;
        if (isOpen) micButton.focus();
      },
    });
  });

  // --- open, close, keyboard ---------------------------------------------------------------
  let isOpen = false;
  let restored;

  function open() {
    if (isOpen) return;
    isOpen = true;
    dialog.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    ctx.setUnread(0);
    ctx.seen();
    restored ||= restore();
    follow();
    log.scrollTop = log.scrollHeight;
    input.focus();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    if (call) call.hangUp(); // no call goes on behind a closed panel
    dialog.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    follow(); // stops asking while closed
    launcher.focus(); // focus goes back where it came from
  }

  closeButton.addEventListener("click", close);
  root.addEventListener("keydown", (event) => {
    if (!isOpen) return;
    if (event.key === "Escape") {
      event.preventDefault();
      if (call) call.hangUp(); // Escape ends the call first, then closes the panel
      else close();
    } else if (event.key === "Tab" && fullScreen.matches) {
      // Full screen the panel is all there is: keep Tab inside it.
      const items = [...dialog.querySelectorAll(FOCUSABLE)];
      const first = items[0];
      const last = items[items.length - 1];
      const active = root.activeElement;
      if (event.shiftKey ? active === first || !dialog.contains(active) : active === last) {
        event.preventDefault();
        (event.shiftKey ? last : first).focus();
      }
    }
  });

  return { open, close, toggle: () => (isOpen ? close() : open()) };
}

// A reply's payment link: the provider's page opens in place of the shop; its way back reloads
// the shop, and the restored history then shows the payment's confirmation.
function payButton(payment, t) {
  if (!payment || !/^https?:\/\//.test(payment.url)) return null;
  const link = el("a", "pay", t.pay);
  link.href = payment.url;
  return link;
}

function button(className, child, label, text) {
  const node = el("button", className, text);
  node.type = "button";
  if (child) node.append(child);
  if (label) node.setAttribute("aria-label", label);
  return node;
}

document.dispatchEvent(new CustomEvent("comptoir:panel", { detail: mount }));
