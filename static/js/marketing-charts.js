// Charts of the marketing reports (Chart.js), drawn from the figures the page embeds with json_script: the
// campaign funnel panel (canvas[data-chart="campaign-funnel"], its figures in data-figures: the panel arrives
// by htmx, which drops script elements, so no json_script there; charts are drawn again after every swap) and the campaign comparison
// (#marketing-comparison-data; each bar opens its campaign). Also the comparison's period form. No inline
// scripts (CSP).
(function () {
  "use strict";

  function readJSON(id) {
    var node = id && document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (value && value.trim()) || fallback;
  }

  function money(currency) {
    var format;
    try {
      format = new Intl.NumberFormat(document.documentElement.lang || undefined, {
        style: "currency", currency: currency, maximumFractionDigits: 0
      });
    } catch (e) {
      format = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
    }
    return function (value) { return format.format(value); };
  }

  function drillDown(urls) {
    return function (event, elements) {
      if (!elements.length || !urls) return;
      var url = urls[elements[0].index];
      if (url) window.location.assign(url);
    };
  }

  // A chart box may start hidden (the funnel's, so a page without Chart.js shows no empty box): shown here,
  // before Chart.js measures it.
  function draw(canvas, config) {
    if (!canvas || canvas.dataset.drawn || !window.Chart) return;
    canvas.dataset.drawn = "1";
    canvas.parentElement.classList.remove("d-none");
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    new window.Chart(canvas, config);
  }

  function funnels(root) {
    root.querySelectorAll('canvas[data-chart="campaign-funnel"]').forEach(function (canvas) {
      var data = null;
      try { data = JSON.parse(canvas.dataset.figures || "null"); } catch (e) { data = null; }
      if (!data) return;
      draw(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{ label: canvas.dataset.label || "Recipients", data: data.counts, backgroundColor: css("--bs-primary", "#4f46e5") }]
        },
        options: {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { display: false } }
        }
      });
    });
  }

  function comparison() {
    var data = readJSON("marketing-comparison-data");
    var canvas = document.querySelector('canvas[data-chart="cost-revenue"]');
    if (!data || !canvas) return;
    var fmt = money(data.currency);
    draw(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: canvas.dataset.costLabel || "Cost", data: data.cost, backgroundColor: css("--bs-warning", "#ffc107") },
          { label: canvas.dataset.revenueLabel || "Revenue", data: data.revenue, backgroundColor: css("--bs-success", "#198754") }
        ]
      },
      options: {
        onClick: drillDown(data.urls),
        scales: { y: { beginAtZero: true, ticks: { callback: fmt } } },
        plugins: {
          tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + (ctx.parsed.y === null ? "—" : fmt(ctx.parsed.y)); } } }
        }
      }
    });
  }

  // Editing a date means "Custom dates"; picking a preset clears the dates (the page shows the preset's).
  function periodForm() {
    var form = document.querySelector("form[data-period-form]");
    if (!form) return;
    var select = form.querySelector('select[name="period"]');
    if (!select) return;
    var dates = form.querySelectorAll('input[type="date"]');
    dates.forEach(function (input) {
      input.addEventListener("change", function () { select.value = "custom"; });
    });
    select.addEventListener("change", function () {
      if (select.value !== "custom") dates.forEach(function (input) { input.value = ""; });
    });
  }

  function init() {
    periodForm();
    funnels(document);
    comparison();
    // A swapped-in panel is a new canvas (drawn ones are marked, so redrawing the page is harmless).
    document.body.addEventListener("htmx:afterSettle", function () { funnels(document); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
