/* Comptoir chat widget (first cut: launcher, panel, JSON turns, history restore).
   Everything server- or user-provided is rendered with textContent, never innerHTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  var api = (script.getAttribute("data-api") || "").replace(/\/$/, "");
  var shop = script.getAttribute("data-shop") || null;
  var title = script.getAttribute("data-title") || "Assistant";
  var storageKey = "comptoir:" + (shop || "default") + ":session";

  var host = document.createElement("div");
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent =
    ":host{all:initial}" +
    ".launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 18px;background:#2b2118;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer}" +
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:340px;max-height:70vh;display:flex;flex-direction:column;background:#fff;color:#222;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif}" +
    ".panel[hidden]{display:none}.head{padding:12px 14px;font-weight:600;border-bottom:1px solid #eee}" +
    ".log{flex:1;overflow:auto;padding:12px}.msg{margin:6px 0;padding:8px 10px;border-radius:10px;white-space:pre-wrap}" +
    ".user{background:#2b2118;color:#fff;margin-left:40px}.assistant{background:#f1ece4;margin-right:40px}" +
    "form{display:flex;border-top:1px solid #eee}input{flex:1;border:0;padding:12px;font:inherit}button.send{border:0;background:none;padding:0 14px;font:inherit;cursor:pointer}";
  var launcher = document.createElement("button");
  launcher.className = "launch";
  launcher.textContent = title;
  var panel = document.createElement("div");
  panel.className = "panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = document.createElement("div");
  head.className = "head";
  head.textContent = title;
  var log = document.createElement("div");
  log.className = "log";
  log.setAttribute("aria-live", "polite");
  var form = document.createElement("form");
  var input = document.createElement("input");
  input.setAttribute("aria-label", "Message");
  input.maxLength = 4000;
  var send = document.createElement("button");
  send.className = "send";
  send.type = "submit";
  send.textContent = "Envoyer";
  form.append(input, send);
  panel.append(head, log, form);
  root.append(style, launcher, panel);
  document.body.appendChild(host);

  function add(role, text) {
    var div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  var restored = false;
  function restore() {
    var sid = localStorage.getItem(storageKey);
    if (restored || !sid) return;
    restored = true;
    var query = "?session_id=" + encodeURIComponent(sid) + (shop ? "&shop=" + encodeURIComponent(shop) : "");
    fetch(api + "/chat/history" + query).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) data.messages.forEach(function (m) { add(m.role, m.text); }); });
  }

  launcher.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) { restore(); input.focus(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    add("user", text);
    input.value = "";
    fetch(api + "/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: text, session_id: localStorage.getItem(storageKey), shop: shop })
    }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { add("assistant", res.body.error ? res.body.error.message : "Erreur"); return; }
        localStorage.setItem(storageKey, res.body.session_id);
        add("assistant", res.body.reply);
      })
      .catch(function () { add("assistant", "Connexion impossible, réessayez."); input.value = text; });
  });
})();
