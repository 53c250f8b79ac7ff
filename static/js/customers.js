// The customer list's bulk bar: count the selected rows, enable "Apply", show the fields the chosen action
// needs, and "select all on this page" from the table header. No inline scripts (CSP).
(function () {
  "use strict";
  function init() {
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
      all.setAttribute("aria-label", header.getAttribute("data-label") || "Select all on this page");
      all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        update();
      });
      header.appendChild(all);
    }

    function update() {
      var n = boxes().filter(function (b) { return b.checked; }).length;
      apply.disabled = n === 0;
      if (n > 0) counter.textContent = counter.getAttribute("data-template").replace("__N__", n);
      var chosen = action.value;
      Array.prototype.forEach.call(form.querySelectorAll(".bulk-param"), function (el) {
        el.hidden = el.getAttribute("data-for").split(" ").indexOf(chosen) === -1;
      });
    }
    document.addEventListener("change", function (e) {
      if (e.target.classList.contains("row-select") || e.target === action) update();
    });
    update();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
