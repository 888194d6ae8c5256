// The inbox: conversations with filters and badges, one conversation with its messages,
// product cards, order and WhatsApp window, the reply box, take over and release.

import { ApiError, call } from "./api.js";
import { field, fill, h } from "./dom.js";
import { money, t, when } from "./strings.js";

const CHANNELS = ["web", "whatsapp", "telegram", "nextcloud", "email", "messenger", "instagram"];
let filters = { channel: "", state: "", needs_human: false, unread: false, q: "" };
let openId = "";
let listTimer = 0;
let appRef = null;

export const inbox = {
  async render(main, id, app) {
    appRef = app;
    openId = id;
    const list = h("ul", { class: "conversations", "aria-label": t("conversations") });
    const pane = h("section", { class: "conversation", "aria-label": t("conversations") });
    main.append(h(
      "div",
      { class: id ? "inbox has-open" : "inbox" },
      h("div", { class: "list-pane" }, h("h1", null, t("inbox")), filterForm(), list),
      id ? pane : null,
    ));
    const loading = [loadList()];
    if (id) loading.push(openConversation(pane, id, true));
    await Promise.all(loading);
  },
  onEvent(event) {
    clearTimeout(listTimer);
    listTimer = setTimeout(() => loadList().catch(() => {}), 200);
    const pane = document.querySelector("section.conversation");
    const mine = event.conversation_id === openId || event.kind === "sync";
    if (pane && openId && mine) openConversation(pane, openId, false).catch(() => {});
  },
};

function filterForm() {
  const select = (name, options) =>
    field(t(name), h(
      "select",
      { name, value: filters[name], onchange: (e) => update(name, e.target.value) },
      h("option", { value: "" }, t("any")),
      options.map(([value, label]) => h("option", { value }, label)),
    ));
  const check = (name) => h(
    "label",
    { class: "check" },
    h("input", { type: "checkbox", name, checked: filters[name],
      onchange: (e) => update(name, e.target.checked) }),
    t(name),
  );
  const search = h("input", { type: "search", name: "q", value: filters.q, placeholder: "/" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": t("filter"), onsubmit: (e) => {
      e.preventDefault();
      update("q", search.value.trim());
    } },
    select("channel", CHANNELS.map((c) => [c, c])),
    select("state", [["bot", t("bot")], ["human", t("human")]]),
    check("needs_human"),
    check("unread"),
    field(t("search"), search),
  );
  return form;
}

function update(name, value) {
  filters = { ...filters, [name]: value };
  loadList().catch((error) => appRef.fail(error));
}

async function loadList() {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value === true) query.set(name, "1");
    else if (value) query.set(name, value);
  }
  const data = await call(`conversations?${query}`);
  const list = document.querySelector("ul.conversations");
  if (!list) return;
  list.replaceChildren(
    ...(data.conversations.length
      ? data.conversations.map(summaryItem)
      : [h("li", { class: "empty" }, t("no_conversations"))]),
  );
}

function customerName(summary) {
  const customer = summary.customer;
  return (customer && (customer.name || customer.phone)) || t("unknown_customer");
}

function summaryItem(summary) {
  const last = summary.last;
  return h(
    "li",
    { class: summary.unread ? "unread" : null },
    h(
      "a",
      { href: `#inbox/${encodeURIComponent(summary.id)}`,
        "aria-current": summary.id === openId ? "true" : null },
      h("span", { class: "name" }, customerName(summary)),
      h("span", { class: "meta" }, summary.channel, " · ", when(summary.updated_at)),
      summary.needs_human ? h("span", { class: "badge human" }, t("needs_human")) : null,
      summary.unread ? h("span", { class: "badge unread" }, t("unread")) : null,
      last ? h("span", { class: "last" }, last.text) : null,
    ),
  );
}

// --- one conversation ----------------------------------------------------------------------

async function openConversation(pane, id, first) {
  const data = await call(`conversations/${encodeURIComponent(id)}`);
  if (openId !== id) return;
  if (first) {
    await call(`conversations/${encodeURIComponent(id)}/read`, {}).catch(() => {});
    appRef.refreshCounts();
    drawConversation(pane, id, data);
  } else {
    // Live: the log, header and notices change; what the operator is typing stays.
    const fresh = h("div");
    drawConversation(fresh, id, data);
    for (const part of ["header", ".log", ".order", ".window"]) {
      const old = pane.querySelector(`:scope > ${part}`);
      const next = fresh.querySelector(`:scope > ${part}`);
      if (old && next) old.replaceWith(next);
      else if (old) old.remove();
      else if (next) pane.querySelector(".reply").before(next);
    }
  }
  const log = pane.querySelector(".log");
  log.scrollTop = log.scrollHeight;
}

function drawConversation(pane, id, data) {
  const summary = data.conversation;
  const human = summary.state === "human";
  const action = (path) => async () => {
    try {
      await call(`conversations/${encodeURIComponent(id)}/${path}`, {});
      openConversation(pane, id, false);
      loadList();
    } catch (error) {
      appRef.fail(error);
    }
  };
  fill(
    pane,
    h(
      "header",
      null,
      h("a", { href: "#inbox", class: "back" }, "← ", t("back")),
      h("h2", null, customerName(summary)),
      h("p", { class: "meta" }, summary.channel, " · ", t(human ? "human" : "bot"),
        summary.handoff_reason ? ` · ${summary.handoff_reason}` : ""),
      h("button", { type: "button", onclick: action(human ? "release" : "takeover") },
        t(human ? "release" : "takeover")),
    ),
    // The log role is on a wrapper: on the <ol> itself it would hide the list from readers.
    h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": customerName(summary),
      tabindex: "0" }, h("ol", null, data.messages.map(message))),
    data.order ? orderBox(data.order) : null,
    windowNotice(summary, data.window),
    replyBox(pane, id, data.window),
  );
}

function message(msg) {
  const who = msg.author === "operator"
    ? `${t("operator")} (${msg.operator || ""})`
    : t(msg.author === "customer" ? "customer" : "assistant");
  return h(
    "li",
    { class: `msg ${msg.author}` },
    h("p", { class: "who" }, who, " · ", h("time", null, when(msg.at))),
    msg.text ? h("p", { class: "text" }, msg.text) : null,
    msg.media_kind ? h("p", { class: "meta" }, `[${msg.media_kind}]`) : null,
    msg.products && msg.products.length
      ? h("ul", { class: "cards" }, msg.products.map(card))
      : null,
    msg.payment
      ? h("p", { class: "meta" }, money(msg.payment.amount, msg.payment.currency), " ",
        safeLink(msg.payment.url, msg.payment.url))
      : null,
  );
}

function safeLink(url, text) {
  return /^https?:\/\//i.test(url || "")
    ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text)
    : text;
}

function card(product) {
  return h(
    "li",
    { class: "card" },
    /^https:\/\//i.test(product.image || "")
      ? h("img", { src: product.image, alt: "", width: "48", height: "48", loading: "lazy" })
      : null,
    h("span", null, safeLink(product.url, product.title)),
    h("span", { class: "price" }, money(product.price, product.currency)),
  );
}

function orderBox(order) {
  return h(
    "section",
    { class: "order", "aria-label": t("order") },
    h("h3", null, t("order"), " ", h("a", { href: `#orders/${encodeURIComponent(order.id)}` }, order.id)),
    h("p", null, `${order.quantity || 1} × ${order.product_title || ""} `, order.variant || "",
      " · ", money(order.total, order.currency), " · ", t(`s_${order.status}`)),
  );
}

function windowNotice(summary, window) {
  if (summary.channel !== "whatsapp" || !window) return null;
  const text = window.open
    ? t("window_open", when(window.closes_at))
    : window.template ? t("window_closed_template", window.template) : t("window_closed_none");
  return h("p", { class: window.open ? "window notice" : "window notice warn", role: "note" }, text);
}

function replyBox(pane, id, window) {
  const blocked = window && !window.open && !window.template;
  const text = h("textarea", { id: "reply", name: "text", rows: "3", maxlength: "4096",
    required: true, disabled: blocked });
  const status = h("p", { class: "status", role: "status" });
  const form = h(
    "form",
    { class: "reply" },
    field(t("reply"), text, t("send_hint")),
    h("button", { type: "submit", disabled: blocked }, t("send")),
    status,
  );
  const send = async () => {
    const body = text.value.trim();
    if (!body) return;
    try {
      const answer = await call(`conversations/${encodeURIComponent(id)}/reply`, { text: body });
      text.value = "";
      status.textContent = t(answer.sent === "template" ? "sent_template" : answer.sent);
      openConversation(pane, id, false);
      loadList();
    } catch (error) {
      status.textContent = error instanceof ApiError ? error.message : String(error);
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    }
  });
  return form;
}


