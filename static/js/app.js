// Small behaviours of the layout. No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  // Forms that destroy or lock something ask first: <form data-confirm="...">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // "/" focuses the global search, Escape leaves it and closes the results.
  document.addEventListener("keydown", function (event) {
    var search = document.getElementById("global-search");
    if (!search) return;
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) || document.activeElement.isContentEditable;
    if (event.key === "/" && !typing) {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "Escape" && document.activeElement === search) {
      document.getElementById("search-popover").innerHTML = "";
      search.blur();
    }
  });

  // Close the search results when the user clicks elsewhere.
  document.addEventListener("click", function (event) {
    var popover = document.getElementById("search-popover");
    if (popover && !event.target.closest(".topbar-search")) popover.innerHTML = "";
  });

  // Put the keyboard focus on the error summary of a form that came back with errors.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("form-errors");
    if (summary) summary.focus();
    var root = document.documentElement;
    if (root.getAttribute("data-theme-pref") === "auto" && window.matchMedia) {
      root.setAttribute("data-bs-theme", window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    }
  });
})();
