// Order status page: show accepted → processing → paid/failed with times, polling the API until
// the order is final. Polls every second while the page is watched, less often the longer the order
// waits, every 15–60 s while the tab is hidden, and at once when it becomes visible again.
(function () {
  "use strict";
  const FINAL = ["paid", "failed"];
  const LONG_WAIT_MS = 5000; // accepted this long: the queue is long, reassure the customer
  const statusEl = document.getElementById("status");
  const orderId = statusEl.dataset.orderId;
  const eventsEl = document.getElementById("events");
  const totalEl = document.getElementById("total");
  const stepsEl = document.getElementById("steps");
  const noteEl = document.getElementById("queue-note");
  const outcomeEl = document.getElementById("outcome");
  let timer = null;
  let failures = 0;
  let done = false;
  let waitingSince = null;

  function clock(iso) { return new Date(iso).toLocaleTimeString(); }

  function firstReached(events, status) {
    const e = events.find(function (ev) { return ev.to === status; });
    return e ? e.at : null;
  }

  function renderSteps(order) {
    const at = {
      accepted: firstReached(order.events, "accepted"),
      processing: firstReached(order.events, "processing"),
      final: firstReached(order.events, "paid") || firstReached(order.events, "failed"),
    };
    for (const li of stepsEl.querySelectorAll("li")) {
      const step = li.dataset.step;
      if (step === "final") li.firstChild.textContent = order.status === "failed" ? "Failed" : "Paid";
      li.classList.toggle("done", Boolean(at[step]));
      li.classList.toggle("failed", step === "final" && order.status === "failed");
      const time = li.querySelector("time");
      time.textContent = at[step] ? clock(at[step]) : "";
      if (at[step]) time.dateTime = at[step];
    }
  }

  // The order's place in line (the API's `queue`): plain words, an ETA only from a measured rate.
  function renderPlace(queue) {
    const placeEl = document.getElementById("place");
    placeEl.hidden = !queue;
    if (!queue) return;
    const ahead = queue.position === 0 ? "Your order is next in line for payment"
      : queue.position === 1 ? "1 order is ahead of yours"
      : queue.position.toLocaleString() + " orders are ahead of yours";
    let eta = "";
    if (queue.eta_seconds !== null) {
      const s = queue.eta_seconds;
      eta = s < 90 ? "; expected to be paid in about " + Math.max(1, Math.round(s)) + " seconds"
        : s < 5400 ? "; expected to be paid in about " + Math.round(s / 60) + " minutes"
        : "; expected to be paid in about " + (s / 3600).toFixed(1) + " hours";
    }
    placeEl.textContent = ahead + eta + ".";
    placeEl.dataset.position = queue.position;
    placeEl.dataset.eta = queue.eta_seconds === null ? "" : queue.eta_seconds;
  }

  function render(order) {
    statusEl.textContent = order.status;
    statusEl.dataset.status = order.status;
    totalEl.textContent = "Total: " + order.total + " " + order.currency;
    renderSteps(order);
    eventsEl.replaceChildren(...order.events.map(function (e) {
      const li = document.createElement("li");
      li.textContent = clock(e.at) + " — " + (e.from || "new") + " → " + e.to + (e.detail ? ": " + e.detail : "");
      return li;
    }));
    if (order.status === "accepted") {
      waitingSince = waitingSince || Date.parse(firstReached(order.events, "accepted") || order.created_at);
    }
    noteEl.hidden = !(order.status === "accepted" && Date.now() - waitingSince > LONG_WAIT_MS);
    renderPlace(order.queue);
    if (order.status === "paid") outcomeEl.textContent = "Paid. Thank you for your order!";
    if (order.status === "failed") {
      // The API's reason is a whole sentence for the customer ("…; nothing was charged.").
      outcomeEl.textContent = "Your order was not paid. " + order.failure_reason;
    }
  }

  function nextDelay() {
    if (document.hidden) return Math.min(15000 * Math.pow(2, failures), 60000);
    if (failures) return Math.min(1000 * Math.pow(2, failures), 30000);
    // A long queue moves slowly: 1 s at first, up to 5 s after a minute of waiting.
    const waited = waitingSince ? Date.now() - waitingSince : 0;
    return Math.min(1000 + waited / 15, 5000);
  }

  function schedule() {
    clearTimeout(timer);
    if (!done) timer = setTimeout(poll, nextDelay());
  }

  async function poll() {
    try {
      const response = await fetch("/api/orders/" + orderId, { headers: { Accept: "application/json" } });
      if (response.ok) {
        failures = 0;
        const order = await response.json();
        render(order);
        if (FINAL.includes(order.status)) done = true;
      } else if (response.status === 404) {
        statusEl.textContent = "not found";
        done = true;
      } else {
        failures++;
      }
    } catch (err) {
      failures++; // network blip: keep polling, more slowly
    }
    schedule();
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !done) {
      clearTimeout(timer);
      poll();
    }
  });
  poll();
})();
