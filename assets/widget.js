/*! feedback-gateway web widget. Embed with
 *  <script async src="{public URL}/widget.js?v=…" data-site="{site key}"></script>
 * Optional attributes: data-lang="da" (else the browser's languages), data-user-id and
 * data-user-hash (or data-email and data-user-hash) for a visitor the site's backend has
 * identified, data-auto="false" to show only through the API.
 * API: FeedbackWidget.show(), .identify({userId, userHash, email}), .on("answered", fn); the
 * window also receives a "feedbackwidget:answered" event.
 * No dependencies, no cookies; localStorage only when the site lets the widget remember
 * visitors. Everything renders in an open shadow root, so page CSS cannot reach it. */
(function () {
  "use strict";
  if (window.FeedbackWidget && window.FeedbackWidget.version) return;
  var script = document.currentScript ||
    document.querySelector("script[data-site][src*='widget.js']");
  if (!script) return;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var siteKey = script.getAttribute("data-site") || "";
  var storeKey = "feedback-widget:" + siteKey;
  var identity = {
    userId: script.getAttribute("data-user-id"),
    userHash: script.getAttribute("data-user-hash"),
    email: script.getAttribute("data-email")
  };
  var listeners = [];
  var open = null;

  function remembered() {
    try { return JSON.parse(window.localStorage.getItem(storeKey) || "null"); } catch (e) { return null; }
  }
  function remember(value) {
    try { window.localStorage.setItem(storeKey, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function languages() {
    var lang = script.getAttribute("data-lang");
    return lang ? [lang] : (navigator.languages || [navigator.language || "en"]);
  }
  function query(force) {
    var q = { path: location.pathname, lang: languages().join(",") };
    var stored = remembered();
    if (stored && stored.visitor) q.visitor = stored.visitor;
    if (identity.userHash && (identity.userId || identity.email)) {
      q.user_hash = identity.userHash;
      if (identity.userId) q.user_id = identity.userId; else q.email = identity.email;
    }
    if (force) q.force = "true";
    return Object.keys(q).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(q[k]);
    }).join("&");
  }
  function request(method, path, body) {
    var init = { method: method, credentials: "omit", mode: "cors", headers: {} };
    if (body) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(base + "/w/" + encodeURIComponent(siteKey) + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw data;
        return data;
      });
    });
  }

  function evaluate(force) {
    if (open) return Promise.resolve(false);
    var stored = remembered();
    // Once per rest period, also through show(): that is fatigue, not placement.
    if (stored && stored.shown && stored.restDays &&
        Date.now() - stored.shown < stored.restDays * 864e5) {
      return Promise.resolve(false);
    }
    return request("GET", "/eligibility?" + query(force)).then(function (answer) {
      if (!answer.show) return false;
      return new Promise(function (resolve) {
        setTimeout(function () { resolve(render(answer, force)); }, answer.delay_ms || 0);
      });
    }).catch(function () { return false; });
  }

  var CSS =
    ":host{all:initial}" +
    ".w{--a:var(--fw-accent,#1f4e79);--at:var(--fw-accent-text,#fff);--bg:var(--fw-background,#fff);" +
    "--t:var(--fw-text,#1a1a1a);--f:#b45309;box-sizing:border-box;width:min(22rem,calc(100vw - 2rem));" +
    "background:var(--bg);color:var(--t);font:16px/1.4 var(--fw-font,system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif);" +
    "border:1px solid var(--a);border-radius:var(--fw-radius,8px);box-shadow:0 4px 24px rgba(0,0,0,.25);padding:1rem;position:relative;text-align:left}" +
    "@media (prefers-color-scheme:dark){.w:not(.own){--a:var(--fw-accent,#9ccaff);--at:var(--fw-accent-text,#0b1b2b);" +
    "--bg:var(--fw-background,#1e1e1e);--t:var(--fw-text,#f2f2f2);--f:#fbbf24}}" +
    "@media (prefers-reduced-motion:no-preference){.w{animation:in .25s ease-out}}" +
    "@keyframes in{from{opacity:0;transform:translateY(.5rem)}to{opacity:1;transform:none}}" +
    "*{box-sizing:border-box}" +
    "h2{font-size:1rem;margin:0 2.5rem .5rem 0;font-weight:700}" +
    "p{margin:0 0 .75rem}" +
    ".s{display:flex;gap:4px;margin:0;padding:0;border:0}" +
    ".s label{flex:1 1 0;min-width:24px;min-height:36px;display:flex;position:relative;cursor:pointer}" +
    ".s input{position:absolute;inset:0;opacity:0;margin:0;width:100%;height:100%;cursor:pointer}" +
    ".s span{flex:1;display:flex;align-items:center;justify-content:center;border:1px solid var(--a);" +
    "border-radius:4px;color:var(--t);font-weight:700;font-size:.9rem}" +
    ".s input:checked+span{background:var(--a);color:var(--at)}" +
    ".s input:focus-visible+span,button:focus-visible,textarea:focus-visible{outline:3px solid var(--f);outline-offset:2px}" +
    ".e{display:flex;justify-content:space-between;gap:1rem;font-size:.8rem;margin:.35rem 0 .75rem}.e span:last-child{text-align:right}" +
    "label.c{display:block;font-size:.9rem;margin-bottom:.25rem}" +
    "textarea{display:block;width:100%;min-height:4.5rem;font:inherit;color:var(--t);background:var(--bg);" +
    "border:1px solid var(--t);border-radius:4px;padding:.4rem;resize:vertical}" +
    "button{font:inherit;cursor:pointer;min-height:36px;min-width:36px}" +
    ".send{margin-top:.75rem;padding:.4rem 1.2rem;font-weight:700;color:var(--at);background:var(--a);border:0;border-radius:4px}" +
    ".x{position:absolute;top:.5rem;right:.5rem;background:transparent;color:var(--t);border:1px solid transparent;" +
    "border-radius:4px;font-size:1.4rem;line-height:1;padding:0}" +
    ".hp{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}" +
    ".live{margin:.5rem 0 0;font-weight:700}.live:empty{display:none}";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function render(answer, forced) {
    if (open) return false;
    var t = answer.texts;
    var theme = answer.theme || {};
    var pos = (theme.position || "bottom-right").split("-");
    var host = el("feedback-widget", {});
    // Inline and !important: a page's stylesheet (even `* { all: unset }`) cannot move, hide
    // or restyle the host; the shadow root keeps page CSS away from everything inside. Set
    // through the CSSOM, which a page's Content-Security-Policy allows (a style attribute
    // written as text it may not).
    [["all", "initial"], ["display", "block"], ["position", "fixed"], ["z-index", "2147483647"],
      [pos[0], "1rem"], [pos[1], "1rem"], ["visibility", "visible"], ["opacity", "1"]
    ].forEach(function (d) { host.style.setProperty(d[0], d[1], "important"); });
    var vars = { accent: "--fw-accent", accent_text: "--fw-accent-text", background: "--fw-background",
      text: "--fw-text", font: "--fw-font", radius: "--fw-radius" };
    for (var name in vars) if (theme[name]) host.style.setProperty(vars[name], theme[name]);
    var root = host.attachShadow({ mode: "open" });
    // A constructed stylesheet needs no 'unsafe-inline' in the page's policy; a <style>
    // element where the browser has none.
    if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", {}, CSS));
    }
    var own = theme.accent || theme.accent_text || theme.background || theme.text;
    var box = el("div", { "class": own ? "w own" : "w", role: "dialog", "aria-labelledby": "fw-title", "aria-describedby": "fw-q", lang: answer.language });
    var close = el("button", { type: "button", "class": "x", "aria-label": t.close, title: t.close }, "\u00d7");
    var title = el("h2", { id: "fw-title" }, t.title);
    var form = el("form", { novalidate: "" });
    var question = el("p", { id: "fw-q" }, t.question);
    var scale = el("div", { "class": "s", role: "radiogroup", "aria-labelledby": "fw-q", "aria-describedby": "fw-lo fw-hi" });
    for (var n = answer.low; n <= answer.high; n++) {
      var label = el("label", {});
      var input = el("input", { type: "radio", name: "score", value: String(n) });
      label.appendChild(input);
      label.appendChild(el("span", {}, String(n)));
      scale.appendChild(label);
    }
    var ends = el("div", { "class": "e" });
    ends.appendChild(el("span", { id: "fw-lo" }, answer.low + " = " + t.low));
    ends.appendChild(el("span", { id: "fw-hi" }, answer.high + " = " + t.high));
    var commentLabel = el("label", { "class": "c", "for": "fw-comment" }, t.comment);
    var comment = el("textarea", { id: "fw-comment", name: "comment", maxlength: "2000" });
    var trap = el("div", { "class": "hp", "aria-hidden": "true" });
    var trapInput = el("input", { type: "text", name: "website", tabindex: "-1", autocomplete: "off" });
    trap.appendChild(trapInput);
    var send = el("button", { type: "submit", "class": "send" }, t.send);
    var live = el("p", { "class": "live", role: "status", "aria-live": "polite" });
    form.appendChild(question);
    form.appendChild(scale);
    form.appendChild(ends);
    form.appendChild(commentLabel);
    form.appendChild(comment);
    form.appendChild(trap);
    form.appendChild(send);
    box.appendChild(close);
    box.appendChild(title);
    box.appendChild(form);
    box.appendChild(live);
    root.appendChild(box);

    var returnTo = document.activeElement;
    var shownAt = Date.now();
    open = host;
    function dismiss() {
      host.remove();
      open = null;
      if (returnTo && returnTo !== document.body && returnTo.focus && document.contains(returnTo)) returnTo.focus();
    }
    close.addEventListener("click", dismiss);
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); dismiss(); }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var chosen = form.querySelector("input[name=score]:checked");
      if (!chosen) {
        live.textContent = t.pick;
        scale.querySelector("input").focus();
        return;
      }
      send.disabled = true;
      live.textContent = "";
      var body = { impression: answer.impression, score: Number(chosen.value), page: location.pathname,
        language: answer.language, website: trapInput.value };
      if (comment.value.trim()) body.comment = comment.value;
      var wait = Math.max(0, (answer.min_answer_ms || 0) - (Date.now() - shownAt));
      setTimeout(function () {
        request("POST", "/feedback", body).then(function () {
          form.remove();
          live.textContent = t.thank_you;
          close.focus();
          var detail = { metric: answer.metric, score: body.score, comment: body.comment || null };
          listeners.forEach(function (fn) { try { fn(detail); } catch (err) { /* the page's own */ } });
          window.dispatchEvent(new CustomEvent("feedbackwidget:answered", { detail: detail }));
        }, function () {
          send.disabled = false;
          live.textContent = t.error;
        });
      }, wait);
    });
    document.body.appendChild(host);
    if (answer.remember_visitor) {
      var stored = remembered() || {};
      remember({
        visitor: stored.visitor || (window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)),
        shown: Date.now(),
        restDays: answer.rest_days
      });
    }
    // Focus moves to the scale when the page asked (show()) or when the visitor is not typing:
    // the widget never takes the caret from a field being filled in.
    var active = document.activeElement;
    var typing = active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
    if (forced || !typing) scale.querySelector("input").focus();
    return true;
  }

  window.FeedbackWidget = {
    version: 1,
    /** Asks now (for single-page apps): delay, paths and share are skipped; the rest period
     * and the survey's fatigue rules apply. */
    show: function () { return evaluate(true); },
    /** The visitor, as the site's backend proved: userHash = HMAC-SHA256(site secret, userId). */
    identify: function (who) {
      identity = { userId: who && who.userId, userHash: who && who.userHash, email: who && who.email };
    },
    on: function (event, fn) { if (event === "answered" && typeof fn === "function") listeners.push(fn); }
  };
  function start() { if (script.getAttribute("data-auto") !== "false") evaluate(false); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
