// Learnomy console: copy, regenerate, Select all, confirmations, Test, and the Delivery Log
// filters. Plain JavaScript; everything else is rendered on the server.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

  // A page holding a one-time value (a secret to copy, a new token) that the browser restores
  // from its back/forward cache is asked for again: the server then shows what is true now (a
  // fresh key, a rotation in progress, no token) instead of the value from before.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted && document.querySelector("[data-one-time]")) { window.location.reload(); }
  });

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

  // One polite live region: what a button did ("Copied", "New key") is read out.
  var announcer = document.createElement("p");
  announcer.className = "visually-hidden";
  announcer.setAttribute("aria-live", "polite");
  announcer.id = "announcer";
  document.body.appendChild(announcer);
  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function flash(button, text) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    announce(text);
    setTimeout(function () { button.textContent = original; }, 1500);
  }

  // Times: the viewer's local time, with UTC (the server's text) kept in the tooltip.
  function localTimes(root) {
    var format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = format.format(d);
    });
    root.querySelectorAll("time[data-title-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d) && t.title.indexOf("(") < 0) t.title = format.format(d) + " (" + t.title + ")";
    });
  }
  localTimes(document);

  // After a save or a refused form, focus goes to what the page says (a field with an error
  // has autofocus from the server).
  // (After the load: the browser's own scroll to a #fragment would otherwise reset it.)
  window.addEventListener("load", function () {
    setTimeout(function () {
      if (document.querySelector("[autofocus]")) return;
      var said = document.getElementById("form-error") || document.getElementById("notice");
      if (said) said.focus({ preventScroll: location.hash !== "" });
    }, 0);
  });

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

  // Test: send a ping, refresh the row (status, last delivery) and show the outcome in it.
  function testText(o) {
    var parts = [o.delivered ? "Test delivered" : "Test failed"];
    if (o.status_code) parts.push("HTTP " + o.status_code);
    parts.push(o.duration_ms + " ms");
    var text = parts.join(" · ");
    if (!o.delivered && !o.status_code && o.error) text += " — " + o.error;
    if (!o.delivered && o.response_excerpt) {
      var body = o.response_excerpt.length > 200 ? o.response_excerpt.slice(0, 199) + "…" : o.response_excerpt;
      text += " — response: " + body;
    }
    if (o.reactivated) text += " — the webhook is Active again";
    return text;
  }
  function refreshRow(row) {
    return fetch(location.pathname, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return row;
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(row.id);
      if (!fresh) return row;
      row.replaceWith(fresh);
      localTimes(fresh);
      return fresh;
    }).catch(function () { return row; });
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-test-url]");
    if (!button) return;
    var row = button.closest("tr");
    var result = row.querySelector(".test-result");
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
      return refreshRow(row).then(function (current) {
        var out = current.querySelector(".test-result");
        out.textContent = testText(o);
        out.className = "test-result " + (o.delivered ? "ok" : "bad");
        var again = current.querySelector("[data-test-url]");
        if (again && current !== row) again.focus();
      });
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
        localTimes(rows);
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
  // Body format: the template field shows for a custom template; the preview follows the
  // format, the template (as it is typed) and the event chosen.
  var format = document.getElementById("format");
  if (format) {
    var templateField = document.getElementById("template-field");
    var template = document.getElementById("template");
    var previewEvent = document.getElementById("preview-event");
    var preview = document.getElementById("format-preview");
    var timer = null;
    var asked = 0;
    var refreshPreview = function () {
      var mine = ++asked;
      var body = "_csrf=" + encodeURIComponent(csrf) +
        "&format=" + encodeURIComponent(format.value) +
        "&template=" + encodeURIComponent(template.value) +
        "&event=" + encodeURIComponent(previewEvent.value);
      fetch("/admin/formats/preview", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
        credentials: "same-origin"
      }).then(function (r) {
        return r.text().then(function (t) { return { ok: r.ok, text: t }; });
      }).then(function (o) {
        if (mine !== asked) return;
        preview.textContent = o.text;
        preview.classList.toggle("preview-error", !o.ok);
      }).catch(function () {});
    };
    format.addEventListener("change", function () {
      templateField.hidden = format.value !== "template";
      refreshPreview();
    });
    previewEvent.addEventListener("change", refreshPreview);
    template.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refreshPreview, 250);
    });
  }
})();
