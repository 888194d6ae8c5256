// The other sections: orders, customers, shop settings, catalogue/FAQ upload, campaigns, jobs,
// health and the audit log.

import { call, upload } from "./api.js";
import { field, h, setError } from "./dom.js";
import { money, t, when } from "./strings.js";

const STATUSES = ["draft", "confirmed", "awaiting_payment", "payment_failed", "payment_mismatch",
  "paid", "fulfilled", "cancelled"];
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const RANGE = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/;
const enc = encodeURIComponent;

const status = () => h("p", { class: "status", role: "status" });
const table = (heads, rows) => h(
  "table",
  null,
  h("thead", null, h("tr", null, heads.map((head) => h("th", { scope: "col" }, head)))),
  h("tbody", null, rows),
);

// --- orders --------------------------------------------------------------------------------

let orderStatus = "";

const orders = {
  async render(main, id, app) {
    const filter = h(
      "select",
      { name: "status", value: orderStatus, onchange: () => {
        orderStatus = filter.value;
        list().catch(app.fail);
      } },
      h("option", { value: "" }, t("all")),
      STATUSES.map((s) => h("option", { value: s }, t(`s_${s}`))),
    );
    const body = h("tbody");
    const detail = h("section", { class: "detail", "aria-label": t("order") });
    const moved = status();
    main.append(
      h("h1", null, t("orders")),
      h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, field(t("status"), filter)),
      h("table", null,
        h("thead", null, h("tr", null, ["#", t("customer"), t("order"), t("total"), t("status"), ""]
          .map((head) => h("th", { scope: "col" }, head)))),
        body),
      detail,
      moved,
    );
    async function list() {
      const data = await call(`orders${orderStatus ? `?status=${enc(orderStatus)}` : ""}`);
      body.replaceChildren(...(data.orders.length ? data.orders.map((order) => h(
        "tr",
        null,
        h("td", null, order.id),
        h("td", null, order.name || ""),
        h("td", null, `${order.quantity || 1} × ${order.product_title || ""}`),
        h("td", null, money(order.total, order.currency)),
        h("td", null, t(`s_${order.status}`)),
        h("td", null, h("a", { href: `#orders/${enc(order.id)}` }, t("move"))),
      )) : [h("tr", null, h("td", { colspan: "6" }, t("no_orders")))]));
    }
    async function show(orderId) {
      const data = await call(`orders/${enc(orderId)}`);
      const order = data.order;
      const to = h("select", { name: "status" },
        data.moves.map((s) => h("option", { value: s }, t(`s_${s}`))));
      const done = status();
      const form = h("form", { class: "move" },
        field(t("move_to"), to), h("button", { type: "submit" }, t("move")), done);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await call(`orders/${enc(orderId)}/status`, { status: to.value });
          await Promise.all([list(), show(orderId)]);
          moved.textContent = t("moved", t(`s_${to.value}`));
        } catch (error) {
          done.textContent = error.message;
        }
      });
      detail.replaceChildren(
        h("h2", null, t("order"), " ", order.id),
        h("p", null, t(`s_${order.status}`), " · ", money(order.total, order.currency), " · ",
          order.name || "", " ", order.phone || "", " ", order.address || ""),
        h("ol", { class: "history" }, (order.history || []).map((step) =>
          h("li", null, when(step.at), " ", t(`s_${step.status}`), " (", step.actor, ")"))),
        data.moves.length ? form : h("p", null, t("no_moves")),
      );
    }
    await list();
    if (id) await show(id);
  },
};

// --- customers -----------------------------------------------------------------------------

const customers = {
  async render(main, id, app) {
    const search = h("input", { type: "search", name: "q" });
    const body = h("tbody");
    const detail = h("section", { class: "detail", "aria-label": t("customer") });
    const form = h("form", { role: "search", class: "filters" }, field(t("search"), search),
      h("button", { type: "submit" }, t("search")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      list().catch(app.fail);
    });
    main.append(h("h1", null, t("customers")), form,
      table([t("customer"), t("phone"), t("channels"), t("orders"), t("last_seen")], body), detail);
    async function list() {
      const data = await call(`customers${search.value ? `?q=${enc(search.value)}` : ""}`);
      body.replaceChildren(...(data.customers.length ? data.customers.map((c) => h(
        "tr",
        null,
        h("td", null, h("a", { href: `#customers/${enc(c.id)}` }, c.name || c.id)),
        h("td", null, c.phone || ""),
        h("td", null, (c.channels || []).join(", ")),
        h("td", null, String(c.orders ?? "")),
        h("td", null, when(c.last_seen)),
      )) : [h("tr", null, h("td", { colspan: "5" }, t("no_customers")))]));
    }
    async function show(customerId) {
      const data = await call(`customers/${enc(customerId)}`);
      const customer = data.customer;
      const confirmField = h("input", { name: "confirm", autocomplete: "off" });
      const done = status();
      const erase = h("form", { class: "erase" },
        field(t("erase_confirm", customer.id), confirmField),
        h("button", { type: "submit", class: "danger" }, t("erase")), done);
      erase.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (confirmField.value !== customer.id) {
          setError(confirmField, t("erase_confirm", customer.id));
          return;
        }
        try {
          await call(`customers/${enc(customer.id)}/erase`, { confirm: customer.id });
          done.textContent = t("erased");
          await list();
        } catch (error) {
          done.textContent = error.message;
        }
      });
      const exportButton = h("button", { type: "button", onclick: async () => {
        const json = await call(`customers/${enc(customer.id)}/export`);
        const blob = new Blob([JSON.stringify(json, null, 2)], { type: "application/json" });
        const link = h("a", { href: URL.createObjectURL(blob), download: `${customer.id}.json` });
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      } }, t("export"));
      detail.replaceChildren(
        h("h2", null, customer.name || customer.id),
        h("p", null, customer.phone || "", " ", (customer.channels || []).join(", ")),
        h("h3", null, t("conversations")),
        h("ul", null, (data.conversations || []).map((c) =>
          h("li", null, h("a", { href: `#inbox/${enc(c.id)}` }, c.channel, " · ", when(c.updated_at))))),
        h("h3", null, t("orders")),
        h("ul", null, (data.orders || []).map((o) =>
          h("li", null, h("a", { href: `#orders/${enc(o.id)}` }, o.id), " ", t(`s_${o.status}`)))),
        exportButton,
        erase,
      );
    }
    await list();
    if (id) await show(id);
  },
};

// --- settings ------------------------------------------------------------------------------

/** The server's 400 says "field: problem; other: problem": each next to its field. */
function showServerErrors(form, message) {
  let placed = false;
  for (const part of message.split("; ")) {
    const [name, ...rest] = part.split(": ");
    const control = form.elements[name.split(".")[0]];
    if (rest.length && control && control.id) {
      setError(control, rest.join(": "));
      placed = true;
    }
  }
  return placed;
}

const settings = {
  async render(main) {
    const { shop } = await call("shop");
    const voice = shop.voice_notes || { enabled: true, voice: "", speed: 1 };
    const choices = (name, values, optional) => h(
      "select",
      { name, value: shop[name] || "" },
      optional ? h("option", { value: "" }, t("default")) : null,
      values.map((v) => h("option", { value: v }, v)),
    );
    const controls = {
      persona: choices("persona", shop.personas || [shop.persona]),
      offer: h("textarea", { name: "offer", rows: "2", maxlength: "500", value: shop.offer || "" }),
      system_prompt_addition: h("textarea", { name: "system_prompt_addition", rows: "5",
        maxlength: "2000", value: shop.system_prompt_addition || "" }),
      llm_provider: choices("llm_provider", shop.llm_providers || [], true),
      llm_model: h("input", { name: "llm_model", maxlength: "100", value: shop.llm_model || "" }),
      whatsapp_template: h("input", { name: "whatsapp_template",
        value: (shop.whatsapp_template && shop.whatsapp_template.name) || "" }),
      whatsapp_language: h("input", { name: "whatsapp_language",
        value: (shop.whatsapp_template && shop.whatsapp_template.language) || "" }),
      payment_provider: choices("payment_provider", shop.payment_providers || [shop.payment_provider]),
      web_search: h("input", { type: "checkbox", name: "web_search", checked: Boolean(shop.web_search) }),
      voice_notes: h("input", { type: "checkbox", name: "voice_notes", checked: voice.enabled }),
      voice_notes_voice: h("input", { name: "voice_notes_voice", maxlength: "50", value: voice.voice }),
      voice_notes_speed: h("input", { type: "number", name: "voice_notes_speed", min: "0.5", max: "2",
        step: "0.05", value: String(voice.speed) }),
      voice: h("input", { type: "checkbox", name: "voice", checked: Boolean(shop.voice && shop.voice.enabled) }),
    };
    const hours = Object.fromEntries(WEEKDAYS.map((day) => [day, h("input", {
      name: `business_hours.${day}`, inputmode: "numeric",
      value: ((shop.business_hours || {})[day] || []).join(", "),
    })]));
    const done = status();
    const form = h(
      "form",
      { class: "settings", novalidate: true },
      h("h1", null, t("settings"), " · ", shop.name),
      field(t("persona"), controls.persona),
      field(t("offer"), controls.offer, t("offer_hint")),
      field(t("system_prompt_addition"), controls.system_prompt_addition),
      field(t("llm_provider"), controls.llm_provider),
      field(t("llm_model"), controls.llm_model),
      field(t("whatsapp_template"), controls.whatsapp_template),
      field(t("whatsapp_language"), controls.whatsapp_language),
      h("fieldset", { name: "business_hours" },
        h("legend", null, t("business_hours"), ` (${shop.timezone || ""})`),
        h("p", { class: "hint" }, t("hours_hint")),
        h("div", { class: "error", id: "business_hours-error", role: "alert", hidden: true }),
        WEEKDAYS.map((day) => field(t(day), hours[day]))),
      field(t("payment_provider"), controls.payment_provider),
      field(t("web_search"), controls.web_search, t("web_search_hint")),
      field(t("voice_notes"), controls.voice_notes, t("voice_notes_hint")),
      field(t("voice_notes_voice"), controls.voice_notes_voice),
      field(t("voice_notes_speed"), controls.voice_notes_speed),
      field(t("voice"), controls.voice, t("voice_hint")),
      h("button", { type: "submit" }, t("save")),
      done,
    );
    form.elements.business_hours.id = "business_hours";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const control of form.elements) setError(control, "");
      let valid = true;
      const wrong = (control, message) => {
        setError(control, message);
        valid = false;
      };
      if (controls.offer.value.length > 500) wrong(controls.offer, t("too_long", 500));
      if (controls.system_prompt_addition.value.length > 2000)
        wrong(controls.system_prompt_addition, t("too_long", 2000));
      if (/\s/.test(controls.llm_model.value.trim())) wrong(controls.llm_model, t("no_spaces"));
      const businessHours = {};
      for (const day of WEEKDAYS) {
        const ranges = hours[day].value.split(",").map((r) => r.trim()).filter(Boolean);
        if (ranges.some((r) => !RANGE.test(r))) wrong(hours[day], t("bad_hours"));
        if (ranges.length) businessHours[day] = ranges;
      }
      if (!valid) {
        done.textContent = t("form_errors");
        return;
      }
      const template = controls.whatsapp_template.value.trim();
      const body = {
        persona: controls.persona.value,
        offer: controls.offer.value,
        system_prompt_addition: controls.system_prompt_addition.value,
        llm_provider: controls.llm_provider.value || null,
        llm_model: controls.llm_model.value.trim() || null,
        whatsapp_template: template ? {
          ...(shop.whatsapp_template || {}),
          name: template,
          language: controls.whatsapp_language.value.trim() || "en_US",
        } : null,
        business_hours: Object.keys(businessHours).length ? businessHours : null,
        payment_provider: controls.payment_provider.value,
        web_search: controls.web_search.checked,
        voice_notes: {
          enabled: controls.voice_notes.checked,
          voice: controls.voice_notes_voice.value.trim(),
          speed: Number(controls.voice_notes_speed.value) || 1,
        },
        // The provider, model and voice set through the CLI stay as they are.
        voice: shop.voice || controls.voice.checked
          ? { ...(shop.voice || {}), enabled: controls.voice.checked } : null,
      };
      try {
        Object.assign(shop, (await call("shop", body)).shop);
        done.textContent = t("saved");
      } catch (error) {
        done.textContent = showServerErrors(form, error.message) ? t("form_errors") : error.message;
      }
    });
    main.append(form);
  },
};

// --- catalogue and FAQ upload --------------------------------------------------------------

const catalog = {
  render(main) {
    const file = h("input", { type: "file", name: "file", accept: ".json,.csv,application/json,text/csv" });
    const kind = h("select", { name: "kind" },
      h("option", { value: "catalog" }, t("catalog")), h("option", { value: "faq" }, t("faq")));
    const bar = h("progress", { max: "1", value: "0", "aria-label": t("upload"), hidden: true });
    const done = status();
    const report = h("pre", { class: "report", tabindex: "0", hidden: true, "aria-label": t("report") });
    const form = h("form", { class: "upload" }, h("h1", null, t("catalog")),
      field(t("kind"), kind), field(t("file"), file), h("button", { type: "submit" }, t("upload")),
      bar, done, report);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      setError(file, "");
      if (!file.files.length) return setError(file, t("choose_file"));
      bar.hidden = false;
      bar.value = 0;
      report.hidden = true;
      try {
        const data = await upload(kind.value, file.files[0], (part) => (bar.value = part));
        bar.value = 1;
        done.textContent = t("report");
        report.textContent = JSON.stringify(data.report, null, 2);
        report.hidden = false;
      } catch (error) {
        done.textContent = `${t("upload_failed")} ${error.message}`;
      }
    });
    main.append(form);
  },
};

// --- campaigns and jobs --------------------------------------------------------------------

/** A "create from the CLI's JSON" form posting {definition} to `path`. */
function createForm(path, after) {
  const text = h("textarea", { name: "definition", rows: "6", spellcheck: "false" });
  const done = status();
  const form = h("form", { class: "create" }, field(t("definition"), text),
    h("button", { type: "submit" }, t("create")), done);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setError(text, "");
    let definition;
    try {
      definition = JSON.parse(text.value);
    } catch {
      return setError(text, t("bad_json"));
    }
    try {
      await call(path, { definition });
      text.value = "";
      await after();
    } catch (error) {
      setError(text, error.message);
    }
  });
  return form;
}

const campaigns = {
  async render(main, _id, app) {
    const list = h("ul", { class: "items" });
    const out = h("section", { class: "detail", "aria-live": "polite" });
    main.append(h("h1", null, t("campaigns")), list, out, createForm("campaigns", load));
    const act = (run) => async () => {
      try {
        await run();
      } catch (error) {
        out.replaceChildren(h("p", { class: "error" }, error.message));
      }
    };
    async function load() {
      const data = await call("campaigns");
      list.replaceChildren(...data.campaigns.map((c) => {
        const path = `campaigns/${enc(c.id)}`;
        return h(
          "li",
          null,
          h("h2", null, c.name || c.id),
          h("p", { class: "meta" }, c.recipe || "", " · ", t(c.enabled ? "enabled" : "disabled"),
            c.last_run ? ` · ${c.last_run.status || ""} ${when(c.last_run.started_at)}` : ""),
          h("div", { class: "actions" },
            h("button", { type: "button", onclick: act(async () => {
              const p = await call(`${path}/preview`, {});
              out.replaceChildren(h("h3", null, t("preview"), " · ", c.id),
                h("p", null, `${t("audience")}: ${p.audience}`),
                h("ul", null, p.samples.map((s) => h("li", null, `${s.name || s.customer_id} (${s.channel}): `, s.text))));
            }) }, t("preview")),
            h("button", { type: "button", disabled: !c.enabled, onclick: act(async () => {
              await call(`${path}/launch`, {});
              out.replaceChildren(h("p", null, t("launched")));
              await load();
            }) }, t("launch")),
            h("button", { type: "button", onclick: act(async () => {
              const r = await call(`${path}/report`);
              out.replaceChildren(h("h3", null, t("report"), " · ", c.id),
                h("pre", null, JSON.stringify({ statuses: r.statuses, by_channel: r.by_channel,
                  replies: r.replies, orders: r.orders, payments: r.payments, revenue: r.revenue }, null, 2)));
            }) }, t("report")),
            h("button", { type: "button", onclick: act(async () => {
              await call(`${path}/enabled`, { enabled: !c.enabled });
              await load();
            }) }, t(c.enabled ? "disable" : "enable")),
          ),
        );
      }));
    }
    await load().catch(app.fail);
  },
};

const jobs = {
  async render(main, _id, app) {
    const list = h("ul", { class: "items" });
    const out = status();
    main.append(h("h1", null, t("jobs")), list, out, createForm("jobs", load));
    async function load() {
      const data = await call("jobs");
      list.replaceChildren(...data.jobs.map((job) => {
        const path = `jobs/${enc(job.id)}`;
        const act = (run) => async () => {
          try {
            await run();
          } catch (error) {
            out.textContent = error.message;
          }
        };
        return h(
          "li",
          null,
          h("h2", null, job.id),
          h("p", { class: "meta" }, job.schedule.cron || when(job.schedule.at), " · ",
            t(job.enabled ? "enabled" : "disabled"),
            job.next_run_at ? ` · ${t("next_run")}: ${when(job.next_run_at)}` : ""),
          h("p", null, job.text || job.prompt),
          h("div", { class: "actions" },
            h("button", { type: "button", disabled: !job.enabled, onclick: act(async () => {
              await call(`${path}/run`, {});
              out.textContent = t("queued");
            }) }, t("run_now")),
            h("button", { type: "button", onclick: act(async () => {
              await call(`${path}/enabled`, { enabled: !job.enabled });
              await load();
            }) }, t(job.enabled ? "disable" : "enable")),
          ),
        );
      }));
    }
    await load().catch(app.fail);
  },
};

// --- health and audit ----------------------------------------------------------------------

const health = {
  async render(main) {
    const data = await call("health");
    const rows = [];
    for (const [name, value] of Object.entries(data)) {
      const parts = "ok" in value ? { [name]: value } : Object.fromEntries(
        Object.entries(value).map(([sub, v]) => [`${name} · ${sub}`, v]));
      for (const [label, check] of Object.entries(parts)) {
        rows.push(h("tr", { class: check.ok ? "ok" : "failing" }, h("th", { scope: "row" }, label),
          h("td", null, check.ok ? `✓ ${t("ok")}` : `✗ ${t("failing")}`), h("td", null, String(check.detail ?? ""))));
      }
    }
    main.append(h("h1", null, t("health")), table(["", t("status"), ""], rows));
  },
};

const audit = {
  async render(main) {
    const body = h("tbody");
    const more = h("button", { type: "button", hidden: true }, t("more"));
    let cursor = "";
    async function load() {
      const data = await call(`audit${cursor ? `?cursor=${enc(cursor)}` : ""}`);
      body.append(...data.entries.map((e) => h("tr", null, h("td", null, when(e.at)),
        h("td", null, e.operator), h("td", null, e.action), h("td", null, e.target || ""),
        h("td", null, e.details ? JSON.stringify(e.details) : ""))));
      cursor = data.cursor || "";
      more.hidden = !cursor;
    }
    more.addEventListener("click", load);
    main.append(h("h1", null, t("audit")),
      table([t("when"), t("who"), t("action"), t("target"), ""], body), more);
    await load();
  },
};

export const screens = { orders, customers, settings, catalog, campaigns, jobs, health, audit };
