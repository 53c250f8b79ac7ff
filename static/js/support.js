// The agent workspace (support/templates/support/tickets/): live SLA countdowns, the queue's bulk bar, the
// ticket page's one-field forms that save on change, and the reply composer (reply / note toggle, canned
// responses and article links inserted at the cursor, chosen file names). No inline scripts (CSP).
(function () {
  "use strict";

  // --- SLA countdowns: "in 1 h 20 m" / "overdue 12 m", from data-due, every 30 s ----------------------------
  // The wording comes from #sla-countdown-words (translated by the server, which renders the same text first).
  function words() {
    var el = document.getElementById("sla-countdown-words");
    var d = el ? el.dataset : {};
    return {
      "in": d["in"] || "in %(time)s",
      overdue: d.overdue || "overdue %(time)s",
      less: d.less || "< 1 m",
      days: d.days || "%(d)d d %(h)d h",
      hours: d.hours || "%(h)d h %(m)d m",
      minutes: d.minutes || "%(m)d m"
    };
  }

  function duration(ms, w) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    if (minutes === 0) return w.less;
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    if (days) return w.days.replace("%(d)d", days).replace("%(h)d", hours);
    if (hours) return w.hours.replace("%(h)d", hours).replace("%(m)d", mins);
    return w.minutes.replace("%(m)d", mins);
  }

  function tick() {
    var w = words();
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll(".sla-countdown[data-due]"), function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = (left > 0 ? w["in"] : w.overdue).replace("%(time)s", duration(left, w));
      el.classList.toggle("is-overdue", left <= 0);
    });
  }

  // --- The queue's bulk bar ------------------------------------------------------------------------------
  function initBulk() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var apply = document.getElementById("bulk-apply");
    var counter = document.getElementById("bulk-count");
    var action = document.getElementById("bulk-action");
    var boxes = function () { return Array.prototype.slice.call(document.querySelectorAll(".row-select")); };
    var header = document.querySelector("th.col-select");
    if (header && !header.querySelector("input")) {
      var all = document.createElement("input");
      all.type = "checkbox";
      all.className = "form-check-input";
      all.setAttribute("aria-label", counter.getAttribute("data-all-label") || "Select all on this page");
      all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        update();
      });
      header.appendChild(all);
    }
    function update() {
      var chosen = boxes().filter(function (b) { return b.checked; });
      apply.disabled = chosen.length === 0;
      form.classList.toggle("has-selection", chosen.length > 0);
      if (chosen.length) counter.textContent = counter.getAttribute("data-template").replace("__N__", chosen.length);
      boxes().forEach(function (b) { b.closest("tr").classList.toggle("is-selected", b.checked); });
      Array.prototype.forEach.call(form.querySelectorAll(".bulk-param"), function (el) {
        el.hidden = el.getAttribute("data-for").split(" ").indexOf(action.value) === -1;
      });
    }
    document.addEventListener("change", function (e) {
      if (e.target.classList.contains("row-select") || e.target === action) update();
    });
    update();
  }

  // --- The composer --------------------------------------------------------------------------------------
  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || 0;
    var before = textarea.value.slice(0, start);
    var after = textarea.value.slice(end);
    var glue = before && !/\n$/.test(before) ? "\n" : "";
    textarea.value = before + glue + text + after;
    var caret = (before + glue + text).length;
    textarea.focus();
    textarea.setSelectionRange(caret, caret);
  }

  function setKind(composer, kind) {
    var note = kind === "note";
    composer.classList.toggle("is-note", note);
    var text = composer.querySelector(".composer-text");
    if (text) text.placeholder = text.getAttribute(note ? "data-placeholder-note" : "data-placeholder-reply");
    var send = composer.querySelector(".composer-send");
    if (send) send.textContent = send.getAttribute(note ? "data-label-note" : "data-label-reply");
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.name === "kind" && t.closest(".composer")) setKind(t.closest(".composer"), t.value);
    if (t.classList.contains("canned-picker") && t.value) {
      var option = t.options[t.selectedIndex];
      var target = document.getElementById(t.getAttribute("data-target"));
      if (target) insertAtCursor(target, option.getAttribute("data-text") || "");
      t.value = "";
    }
    if (t.classList.contains("composer-files")) {
      var names = Array.prototype.map.call(t.files || [], function (f) { return f.name; });
      var out = t.closest(".composer").querySelector(".composer-file-names");
      if (out) out.textContent = names.join(", ");
    }
    // One-field forms of the ticket page save on change (their button stays for keyboards without JS).
    var auto = t.closest && t.closest("form[data-autosubmit]");
    if (auto && t.tagName === "SELECT") {
      if (auto.requestSubmit) auto.requestSubmit(); else auto.submit();
    }
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest(".insert-article");
    if (!button) return;
    var target = document.getElementById(button.getAttribute("data-target"));
    if (target) insertAtCursor(target, button.getAttribute("data-text") || "");
  });

  function init() {
    document.documentElement.classList.add("support-js");
    initBulk();
    tick();
    window.setInterval(tick, 30000);
  }
  document.addEventListener("htmx:afterSettle", tick);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
