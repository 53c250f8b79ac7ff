// Sales pages: the pipeline board (drag and drop with SortableJS, the keyboard "Move to…" menu, the lost
// reason dialog), the stage settings (drag to reorder), and the deal form (customer picker, stage defaults).
// The server applies every rule and redraws what changed; this file only gathers the user's intent.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  // --- Board ------------------------------------------------------------------------------------------------

  var pendingRevert = null; // puts a dragged card back when its move is cancelled

  function askLostReason(card) {
    // Resolves with the reason, or null when the user cancels.
    return new Promise(function (resolve) {
      var modalEl = document.getElementById("lost-modal");
      if (!modalEl || !window.bootstrap) {
        var typed = window.prompt(modalEl ? modalEl.querySelector(".modal-title").textContent : "Lost reason");
        resolve(typed && typed.trim() ? typed.trim() : null);
        return;
      }
      var form = document.getElementById("lost-modal-form");
      var field = document.getElementById("lost-modal-reason");
      var label = document.getElementById("lost-modal-deal");
      var modal = window.bootstrap.Modal.getOrCreateInstance(modalEl);
      var answered = false;
      field.value = "";
      field.classList.remove("is-invalid");
      if (label) label.textContent = card.getAttribute("data-name") || "";
      function onSubmit(event) {
        event.preventDefault();
        var reason = field.value.trim();
        if (!reason) {
          field.classList.add("is-invalid");
          field.focus();
          return;
        }
        answered = true;
        modal.hide();
        resolve(reason);
      }
      function onHidden() {
        form.removeEventListener("submit", onSubmit);
        modalEl.removeEventListener("hidden.bs.modal", onHidden);
        if (!answered) resolve(null);
      }
      form.addEventListener("submit", onSubmit);
      modalEl.addEventListener("hidden.bs.modal", onHidden);
      modalEl.addEventListener("shown.bs.modal", function () { field.focus(); }, { once: true });
      modal.show();
    });
  }

  function submitMove(card, stageId, reason) {
    var form = card.querySelector("form.card-move");
    if (!form) return;
    form.querySelector("input[name=stage]").value = stageId;
    form.querySelector("input[name=lost_reason]").value = reason || "";
    card.classList.add("is-moving");
    form.requestSubmit();
  }

  function requestMove(card, stageId, outcome, revert) {
    if (outcome === "lost") {
      askLostReason(card).then(function (reason) {
        if (reason === null) {
          if (revert) revert();
          return;
        }
        submitMove(card, stageId, reason);
      });
    } else {
      submitMove(card, stageId, "");
    }
  }

  function initBoardColumns(root) {
    if (!window.Sortable) return;
    var lists = root.querySelectorAll ? root.querySelectorAll(".board-cards") : [];
    if (root.classList && root.classList.contains("board-cards")) lists = [root];
    Array.prototype.forEach.call(lists, function (list) {
      if (list.getAttribute("data-sortable") === "1") return;
      if (!list.closest(".board") || !document.getElementById("lost-modal")) return; // read-only board
      list.setAttribute("data-sortable", "1");
      window.Sortable.create(list, {
        group: "board",
        sort: false, // a column is ordered by amount; only moving between columns means something
        animation: 150,
        filter: ".btn-card-menu, .dropdown-menu",
        preventOnFilter: false,
        ghostClass: "deal-card-ghost",
        chosenClass: "deal-card-chosen",
        dragClass: "deal-card-drag",
        onEnd: function (event) {
          if (event.from === event.to) return;
          var card = event.item;
          var from = event.from;
          var oldIndex = event.oldIndex;
          var revert = function () {
            from.insertBefore(card, from.children[oldIndex] || null);
          };
          requestMove(card, event.to.getAttribute("data-stage-id"), event.to.getAttribute("data-outcome"), revert);
        },
      });
    });
  }

  // The keyboard path: "Move to…" menu items on each card.
  document.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest("[data-move-stage]");
    if (!item) return;
    event.preventDefault();
    var card = item.closest(".deal-card");
    var toggle = card.querySelector("[data-bs-toggle=dropdown]");
    if (toggle && window.bootstrap) window.bootstrap.Dropdown.getOrCreateInstance(toggle).hide();
    requestMove(card, item.getAttribute("data-move-stage"), item.getAttribute("data-outcome"), null);
  });

  // The pipeline picker switches the board at once.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select && select.id === "id_pipeline" && select.form && select.form.id === "board-filters") {
      select.form.requestSubmit();
    }
  });

  // --- Stage settings: drag to reorder ----------------------------------------------------------------------

  function initStageRows(root) {
    if (!window.Sortable) return;
    var rows = root.querySelector ? root.querySelector("#stage-rows") : null;
    if (!rows && root.id === "stage-rows") rows = root;
    if (!rows || rows.getAttribute("data-sortable") === "1") return;
    rows.setAttribute("data-sortable", "1");
    window.Sortable.create(rows, {
      handle: ".drag-handle",
      animation: 150,
      ghostClass: "stage-row-ghost",
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        var form = document.getElementById("stage-order-form");
        if (form) form.requestSubmit();
      },
    });
  }

  // Chromium leaves an empty style="" on form inputs; htmx's settle step copies it onto the new inputs of the
  // same id with setAttribute, which the CSP reports as an inline style. Drop the empty ones before a swap.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "stages-card") {
      Array.prototype.forEach.call(target.querySelectorAll("[style='']"), function (el) {
        el.removeAttribute("style");
      });
    }
  });

  // After a swap, the keyboard focus goes back to the control that was used.
  document.addEventListener("htmx:afterSettle", function () {
    var target = document.querySelector("[data-refocus]");
    if (target) {
      target.removeAttribute("data-refocus");
      target.focus();
    }
  });

  // --- Deal form: customer picker and stage defaults ----------------------------------------------------------

  function chooseCustomer(button) {
    var hidden = document.getElementById("id_customer");
    if (!hidden) return;
    hidden.value = button.getAttribute("data-customer-id");
    document.getElementById("customer-chosen-name").textContent = button.getAttribute("data-customer-name");
    document.getElementById("customer-chosen-sub").textContent = button.getAttribute("data-customer-sub");
    document.getElementById("customer-chosen-initials").textContent = button.getAttribute("data-customer-initials");
    document.getElementById("customer-chosen").classList.remove("d-none");
    document.getElementById("customer-search-wrap").classList.add("d-none");
    document.getElementById("customer-options").innerHTML = "";
    var name = document.getElementById("id_name");
    if (name && !name.value) name.focus();
    else document.getElementById("customer-change").focus();
  }

  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest(".customer-option");
    if (option) {
      event.preventDefault();
      chooseCustomer(option);
      return;
    }
    if (event.target.id === "customer-change") {
      document.getElementById("id_customer").value = "";
      document.getElementById("customer-chosen").classList.add("d-none");
      document.getElementById("customer-search-wrap").classList.remove("d-none");
      document.getElementById("customer-search").focus();
    }
  });

  document.addEventListener("keydown", function (event) {
    // Arrow keys move between the search box and the customer options.
    var inPicker = event.target.id === "customer-search" || (event.target.classList && event.target.classList.contains("customer-option"));
    if (!inPicker || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    var options = Array.prototype.slice.call(document.querySelectorAll("#customer-options .customer-option"));
    if (!options.length) return;
    event.preventDefault();
    var index = options.indexOf(event.target);
    var next = event.key === "ArrowDown" ? index + 1 : index - 1;
    if (next < 0) document.getElementById("customer-search").focus();
    else options[Math.min(next, options.length - 1)].focus();
  });

  function applyStageDefaults() {
    var data = document.getElementById("stage-defaults");
    var select = document.getElementById("id_stage");
    if (!data || !select) return;
    var defaults = JSON.parse(data.textContent);
    var chosen = defaults[select.value];
    if (!chosen) return;
    var probability = document.getElementById("id_probability");
    if (probability) probability.placeholder = chosen.probability + " % (" + chosen.category + ")";
    var lost = document.getElementById("lost-reason-field");
    if (lost) lost.classList.toggle("d-none", chosen.outcome !== "lost");
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "id_stage") applyStageDefaults();
  });

  // --- Start ------------------------------------------------------------------------------------------------

  function init(root) {
    initBoardColumns(root);
    initStageRows(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    applyStageDefaults();
    if (window.htmx) window.htmx.onLoad(init);
  });
})();
