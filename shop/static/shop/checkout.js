// Browser checkout: gather the form into the API's JSON, send it with one Idempotency-Key per
// checkout attempt, and follow the order it creates.
//
// An attempt (its key, endpoint and body) is kept in sessionStorage until the shop gives a final
// answer, so a double-click, a reload while the request runs, or a retry after a network error or
// a 503/429 sends the same key again: the shop then answers with the first order instead of
// placing a second one. Changing the basket starts a new attempt with a new key. A sync checkout
// the payment provider has no room for (503 checkout_queue) waits its Retry-After, saying the
// customer's place in line, and retries on its own with the same key, which keeps that place.
(function () {
  "use strict";
  const PENDING = "checkout.pending";
  const RESUME_WITHIN_MS = 10 * 60 * 1000;
  const MAX_IN_PROGRESS_RETRIES = 30;
  const form = document.getElementById("checkout");
  const message = document.getElementById("message");
  const button = form.querySelector("button[type=submit]");
  let busy = false;

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // randomUUID needs a secure context (https or localhost); getRandomValues does not.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function loadPending() {
    try { return JSON.parse(sessionStorage.getItem(PENDING) || "null"); } catch (e) { return null; }
  }
  function savePending(attempt) {
    try { sessionStorage.setItem(PENDING, JSON.stringify(attempt)); } catch (e) { /* private mode: memory only */ }
  }
  function clearPending() {
    try { sessionStorage.removeItem(PENDING); } catch (e) { /* nothing kept */ }
  }

  function say(text, kind) {
    message.textContent = text;
    message.dataset.kind = kind || "error";
  }

  function readForm() {
    const items = [];
    for (const input of form.querySelectorAll("input[name=qty]")) {
      const quantity = Number(input.value);
      if (!input.disabled && quantity > 0) items.push({ sku: input.dataset.sku, quantity: quantity });
    }
    const mode = form.querySelector("input[name=mode]:checked").value;
    return { path: "/api/orders/" + mode, body: JSON.stringify({ email: form.email.value.trim(), items: items }) };
  }

  function restoreForm(attempt) {
    const body = JSON.parse(attempt.body);
    form.email.value = body.email;
    for (const input of form.querySelectorAll("input[name=qty]")) {
      const line = body.items.find(function (item) { return item.sku === input.dataset.sku; });
      input.value = line ? line.quantity : 0;
    }
    const mode = attempt.path.endsWith("/sync") ? "sync" : "async";
    form.querySelector("input[name=mode][value=" + mode + "]").checked = true;
  }

  function nameOf(sku) {
    const input = form.querySelector("input[name=qty][data-sku='" + CSS.escape(sku) + "']");
    return input ? input.dataset.name : sku;
  }

  function showStock(sku, left) {
    const cell = form.querySelector("td.stock[data-sku='" + CSS.escape(sku) + "']");
    const input = form.querySelector("input[name=qty][data-sku='" + CSS.escape(sku) + "']");
    if (!cell || !input) return;
    cell.dataset.left = left === null ? "" : String(left);
    if (cell.closest("tr").dataset.startsAt) return; // not on sale yet: the countdown owns the row
    const soldOut = left === 0;
    cell.textContent = left === null ? "In stock" : soldOut ? "Sold out" : left + " left";
    cell.closest("tr").classList.toggle("sold-out", soldOut);
    input.max = left === null ? 100 : Math.min(left, 100);
    input.disabled = soldOut;
  }

  // The drop: a product whose sale has not opened counts down from the server's clock (the page
  // says what time it is there) and opens at the second, without a reload.
  const serverOffsetMs = (Date.parse(form.dataset.serverNow) || Date.now()) - Date.now();

  function countdown() {
    const now = Date.now() + serverOffsetMs;
    for (const row of form.querySelectorAll("tr[data-starts-at]")) {
      const sku = row.dataset.product;
      const left = Date.parse(row.dataset.startsAt) - now;
      const cell = row.querySelector("td.stock");
      const input = row.querySelector("input[name=qty]");
      if (left > 0) {
        const s = Math.ceil(left / 1000);
        const clock = Math.floor(s / 3600) + ":" + String(Math.floor(s / 60) % 60).padStart(2, "0") + ":" +
          String(s % 60).padStart(2, "0");
        cell.textContent = "On sale in " + clock;
        input.disabled = true;
        continue;
      }
      delete row.dataset.startsAt;
      const units = cell.dataset.left === "" ? null : Number(cell.dataset.left);
      showStock(sku, units);
    }
  }
  if (form.querySelector("tr[data-starts-at]")) {
    countdown();
    const timer = setInterval(function () {
      countdown();
      if (!form.querySelector("tr[data-starts-at]")) clearInterval(timer);
    }, 250);
  }

  async function refreshStock() {
    try {
      const response = await fetch("/api/products", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      for (const product of (await response.json()).results) showStock(product.sku, product.left);
    } catch (e) { /* the page keeps what it showed */ }
  }

  function validationMessage(body) {
    const errors = body.errors || {}; // the API's error shape: {code, detail, errors: {field: [...]}}
    if (errors.email) return "Email: please enter a valid email address (" + errors.email[0] + ")";
    if (errors.items) {
      const lines = Array.isArray(errors.items) ? errors.items : [errors.items];
      for (const e of lines) {
        if (typeof e === "string") return e;
        if (e && (e.sku || e.quantity || e.non_field_errors)) return (e.sku || e.quantity || e.non_field_errors)[0];
      }
    }
    if (errors["Idempotency-Key"]) return "Please try again.";
    return body.detail || "The order could not be placed. Please check the form.";
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // "You are number 3 in line; trying again in 4 s", counting down each second until the retry.
  async function waitInLine(position, seconds) {
    const place = Number.isInteger(position) && position >= 0 ? "You are number " + (position + 1) + " in line"
      : "You are in line";
    for (let left = Math.max(1, Math.ceil(seconds) || 1); left > 0; left--) {
      say("Many customers are paying right now. " + place + "; trying again in " + left + " s. " +
        "Keep this page open: your place is kept, and nothing is charged until your turn.", "info");
      await sleep(1000);
    }
    say("Placing your order…", "info");
  }

  async function send(attempt) {
    for (let tries = 0; ; tries++) {
      let response, body;
      try {
        response = await fetch(attempt.path, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": attempt.key },
          body: attempt.body,
        });
      } catch (err) {
        return say("We could not reach the shop. Check your connection and press Place order again: " +
          "it is safe, your order will not be placed twice.");
      }
      try { body = await response.json(); } catch (err) { body = {}; }

      if (body && body.id) {
        clearPending();
        window.location.assign("/orders/" + body.id);
        return;
      }
      if (response.status === 409 && body.code === "request_in_progress" && tries < MAX_IN_PROGRESS_RETRIES) {
        // The first request with this key is still running (a double-click, a reload): wait for its answer.
        say("Placing your order…", "info");
        await sleep(1000 * Number(response.headers.get("Retry-After") || 1));
        continue;
      }
      if (response.status === 409 && body.code === "out_of_stock") {
        clearPending();
        showStock(body.sku, body.left);
        refreshStock();
        return say(body.left === 0
          ? "Sorry, " + nameOf(body.sku) + " is sold out. Remove it to order the rest."
          : "Sorry, only " + body.left + " of " + nameOf(body.sku) + " left. Lower the quantity and try again.");
      }
      if (response.status === 409 && body.code === "per_customer_limit") {
        clearPending();
        return say("Sorry, " + nameOf(body.sku) + " is limited to " + body.limit + " per customer" +
          (body.already ? " and you already have " + body.already + " in your orders." : "."));
      }
      if (response.status === 409 && body.code === "sale_not_started") {
        clearPending();
        const row = form.querySelector("tr[data-product='" + CSS.escape(body.sku) + "']");
        if (row) { row.dataset.startsAt = body.starts_at; countdown(); }
        return say("Sorry, " + nameOf(body.sku) + " is not on sale yet: it opens at " +
          new Date(body.starts_at).toLocaleTimeString() + ".");
      }
      if (response.status === 503 && body.code === "checkout_queue") {
        // The payment provider is full (sync checkout): wait our turn, then retry with the same key,
        // which keeps our place in line. Nothing is placed or charged until the shop lets us in.
        await waitInLine(body.position, Number(response.headers.get("Retry-After") || body.retry_after || 1));
        continue;
      }
      if (response.status === 429) {
        return say("The shop is very busy right now. Wait a few seconds and press Place order again: " +
          "it is safe, your order will not be placed twice.");
      }
      if (response.status === 503 || response.status >= 500) {
        return say("The shop cannot take orders this moment. Nothing was charged. Press Place order again " +
          "in a few seconds: it is safe, your order will not be placed twice.");
      }
      clearPending(); // a final answer about this basket: a changed basket is a new attempt
      return say(validationMessage(body));
    }
  }

  async function submit(attempt) {
    if (busy) return;
    busy = true;
    button.disabled = true;
    say("Placing your order…", "info");
    try {
      await send(attempt);
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    const current = readForm();
    const pending = loadPending();
    const attempt = pending && pending.path === current.path && pending.body === current.body
      ? pending
      : { key: newKey(), path: current.path, body: current.body, at: Date.now() };
    savePending(attempt);
    submit(attempt);
  });

  // A reload while a request was running (or after a network error): finish that same attempt.
  const pending = loadPending();
  if (pending && Date.now() - pending.at < RESUME_WITHIN_MS) {
    restoreForm(pending);
    submit(pending);
  } else if (pending) {
    clearPending();
  }
})();
