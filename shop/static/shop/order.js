// Order status page: poll the API until the order is paid or failed.
(function () {
  "use strict";
  const statusEl = document.getElementById("status");
  const orderId = statusEl.dataset.orderId;
  const eventsEl = document.getElementById("events");
  const totalEl = document.getElementById("total");

  function render(order) {
    statusEl.textContent = order.status + (order.failure_reason ? " (" + order.failure_reason + ")" : "");
    statusEl.dataset.status = order.status;
    totalEl.textContent = "Total: " + order.total + " " + order.currency;
    eventsEl.replaceChildren(...order.events.map(function (e) {
      const li = document.createElement("li");
      li.textContent = new Date(e.at).toLocaleTimeString() + " — " + (e.from || "new") + " → " + e.to +
        (e.detail ? ": " + e.detail : "");
      return li;
    }));
  }

  async function poll() {
    try {
      const response = await fetch("/api/orders/" + orderId, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const order = await response.json();
        render(order);
        if (order.status === "paid" || order.status === "failed") return;
      } else if (response.status === 404) {
        statusEl.textContent = "not found";
        return;
      }
    } catch (err) { /* network blip: keep polling */ }
    setTimeout(poll, 1000);
  }
  poll();
})();
