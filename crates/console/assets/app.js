// Learnomy console: copy, regenerate, Select all, confirmations, Test, and the Delivery Log
// filters. Plain JavaScript; everything else is rendered on the server.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

  // A 32-character key from the browser's CSPRNG, without modulo bias.
  function randomKey(length) {
    var out = "";
    var bytes = new Uint8Array(1);
    while (out.length < length) {
      crypto.getRandomValues(bytes);
      if (bytes[0] < 248) out += ALPHABET[bytes[0] % 62];
    }
    return out;
  }

  function flash(button, text) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    setTimeout(function () { button.textContent = original; }, 1500);
  }

  function copyFrom(input, button) {
    var done = function () { flash(button, "Copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); document.execCommand("copy"); done(); });
    } else {
      input.select();
      document.execCommand("copy");
      done();
    }
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-action]");
    if (!button) return;
    var target = document.getElementById(button.dataset.target);
    if (!target) return;
    if (button.dataset.action === "copy") copyFrom(target, button);
    if (button.dataset.action === "regenerate") { target.value = randomKey(32); flash(button, "New key"); }
  });

  // Select all.
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    var boxes = function () { return document.querySelectorAll('input[name="events"]'); };
    var sync = function () {
      var all = boxes(), checked = 0;
      all.forEach(function (b) { if (b.checked) checked++; });
      selectAll.checked = checked === all.length && all.length > 0;
      selectAll.indeterminate = checked > 0 && checked < all.length;
    };
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = selectAll.checked; });
    });
    boxes().forEach(function (b) { b.addEventListener("change", sync); });
    sync();
  }

  // Confirmation before destructive forms.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  // Test: send a ping and show the outcome in the row.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-test-url]");
    if (!button) return;
    var result = button.closest("tr").querySelector(".test-result");
    button.disabled = true;
    result.className = "test-result";
    result.textContent = "Sending test…";
    fetch(button.dataset.testUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "_csrf=" + encodeURIComponent(csrf),
      credentials: "same-origin"
    }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.statusText); });
      return r.json();
    }).then(function (o) {
      var parts = [o.delivered ? "Delivered" : "Failed"];
      if (o.status_code) parts.push(String(o.status_code));
      parts.push(o.duration_ms + " ms");
      var text = parts.join(" · ");
      if (!o.delivered && o.error) text += " — " + o.error;
      result.textContent = text;
      result.className = "test-result " + (o.delivered ? "ok" : "bad");
      if (o.reactivated) result.textContent += " (webhook re-activated — reload to see it)";
    }).catch(function (err) {
      result.textContent = "Test could not run: " + err.message;
      result.className = "test-result bad";
    }).finally(function () { button.disabled = false; });
  });

  // Delivery Log: filters and paging without a reload.
  var filters = document.querySelector(".filters[data-rows-url]");
  var rows = document.getElementById("log-rows");
  if (filters && rows) {
    var status = (new URLSearchParams(location.search)).get("status") || "";
    var load = function (cursor) {
      var url = filters.dataset.rowsUrl + "?status=" + encodeURIComponent(status) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      rows.setAttribute("aria-busy", "true");
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        rows.innerHTML = html;
        rows.removeAttribute("aria-busy");
        history.replaceState(null, "", "?status=" + encodeURIComponent(status) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      });
    };
    filters.addEventListener("click", function (e) {
      var link = e.target.closest("[data-status]");
      if (!link) return;
      e.preventDefault();
      status = link.dataset.status;
      filters.querySelectorAll("[data-status]").forEach(function (l) { l.setAttribute("aria-pressed", l === link ? "true" : "false"); });
      load("");
    });
    rows.addEventListener("click", function (e) {
      var link = e.target.closest("[data-cursor]");
      if (!link) return;
      e.preventDefault();
      load(link.dataset.cursor);
    });
  }
})();
