// Browser checkout: gather the form into the API's JSON and follow the order it creates.
(function () {
  "use strict";
  const form = document.getElementById("checkout");
  const message = document.getElementById("message");

  function firstError(body) {
    if (body.detail) return body.detail;
    if (body.email) return "Email: " + body.email[0];
    if (body.items) {
      const errors = Array.isArray(body.items) ? body.items : [body.items];
      for (const e of errors) {
        if (typeof e === "string") return e;
        if (e && (e.sku || e.quantity || e.non_field_errors)) return (e.sku || e.quantity || e.non_field_errors)[0];
      }
    }
    return "The order could not be placed.";
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    message.textContent = "";
    const items = [];
    for (const input of form.querySelectorAll("input[name=qty]")) {
      const quantity = Number(input.value);
      if (quantity > 0) items.push({ sku: input.dataset.sku, quantity: quantity });
    }
    const mode = form.querySelector("input[name=mode]:checked").value;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("/api/orders/" + mode, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ email: form.email.value, items: items }),
      });
      const body = await response.json();
      if (body.id) {
        window.location.assign("/orders/" + body.id);
        return;
      }
      message.textContent = firstError(body);
    } catch (err) {
      message.textContent = "The shop could not be reached. Please try again.";
    } finally {
      button.disabled = false;
    }
  });
})();
