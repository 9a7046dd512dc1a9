// Refresh the figures every few seconds without reloading the page (a form being filled in stays):
// fetch the page again and swap its #snapshot section. A file, not inline script (CSP: script-src 'self').
(function () {
  "use strict";
  const root = document.getElementById("operations");
  if (!root) return;
  const seconds = Number(root.dataset.refreshSeconds) || 5;

  async function refresh() {
    try {
      const response = await fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok || response.redirected) return; // logged out or an error: keep the last figures
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("snapshot");
      if (fresh) document.getElementById("snapshot").replaceWith(fresh);
    } catch (error) {
      // offline for a moment: try again at the next tick
    }
  }
  window.setInterval(refresh, seconds * 1000);
})();
