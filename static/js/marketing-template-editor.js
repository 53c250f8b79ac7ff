// The email template editor: the merge-field picker (insert at the cursor of the last field edited), the
// preview's customer picker (arrow keys, choose, back to example values), and the "generate plain text"
// confirmation. The preview itself refreshes through htmx (the "template-changed" event and form input).
(function () {
  "use strict";

  var PREVIEW_CHANGED = "template-changed";
  var lastTarget = null;

  function previewChanged() {
    document.body.dispatchEvent(new CustomEvent(PREVIEW_CHANGED, { bubbles: true }));
  }

  // --- Merge-field picker ---------------------------------------------------------------------------------

  document.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-merge-target")) lastTarget = event.target;
  });

  function insertField(code) {
    var target = lastTarget || document.getElementById("id_html_body");
    if (!target) return;
    var start = target.selectionStart == null ? target.value.length : target.selectionStart;
    var end = target.selectionEnd == null ? start : target.selectionEnd;
    target.setRangeText(code, start, end, "end");
    target.focus();
    // An input event, as typing would: the live preview listens for it.
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var field = event.target.closest && event.target.closest("[data-merge-field]");
    if (field) {
      event.preventDefault();
      insertField(field.getAttribute("data-merge-field"));
      return;
    }
    var option = event.target.closest && event.target.closest(".preview-customer-option");
    if (option) {
      event.preventDefault();
      chooseCustomer(option);
      return;
    }
    if (event.target.closest && event.target.closest("#preview-use-examples")) {
      var hidden = document.getElementById("preview-customer");
      var search = document.getElementById("preview-customer-search");
      if (hidden) hidden.value = "";
      if (search) search.value = "";
      document.getElementById("preview-customer-options").innerHTML = "";
      previewChanged();
    }
  });

  // --- Preview customer picker ----------------------------------------------------------------------------

  function chooseCustomer(button) {
    var hidden = document.getElementById("preview-customer");
    var search = document.getElementById("preview-customer-search");
    if (!hidden) return;
    hidden.value = button.getAttribute("data-customer-id");
    // A search still on its way would bring the options back after the choice: drop it.
    if (search && window.htmx) window.htmx.trigger(search, "htmx:abort");
    if (search) {
      search.value = button.getAttribute("data-customer-name");
      search.focus();
    }
    document.getElementById("preview-customer-options").innerHTML = "";
    previewChanged();
  }

  document.addEventListener("keydown", function (event) {
    var inPicker =
      event.target.id === "preview-customer-search" ||
      (event.target.classList && event.target.classList.contains("preview-customer-option"));
    if (!inPicker) return;
    if (event.key === "Escape") {
      document.getElementById("preview-customer-options").innerHTML = "";
      document.getElementById("preview-customer-search").focus();
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var options = Array.prototype.slice.call(document.querySelectorAll("#preview-customer-options .preview-customer-option"));
    if (!options.length) return;
    event.preventDefault();
    var index = options.indexOf(event.target);
    var next = event.key === "ArrowDown" ? index + 1 : index - 1;
    if (next < 0) document.getElementById("preview-customer-search").focus();
    else options[Math.min(next, options.length - 1)].focus();
  });

  // --- "Generate plain text from the HTML": ask only when it would replace something ---------------------

  document.addEventListener("htmx:confirm", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm-if-text");
    if (!question) return;
    var text = document.getElementById("id_text_body");
    if (!text || !text.value.trim()) return;
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });
})();
