// Charts of the sales dashboard and of team performance (Chart.js), drawn from the figures the page embeds
// with json_script (#sales-dashboard-data, #sales-analytics-data). Every bar and point links to the deals
// behind it, like the tables under each chart. Also the team performance period form. No inline scripts (CSP).
(function () {
  "use strict";

  function readJSON(id) {
    var node = document.getElementById(id);
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

  // Clicking a bar or point opens the list behind it.
  function drillDown(urls) {
    return function (event, elements) {
      if (!elements.length || !urls) return;
      var url = urls[elements[0].index];
      if (url) window.location.assign(url);
    };
  }

  function draw(canvas, config) {
    if (canvas.dataset.drawn) return;
    canvas.dataset.drawn = "1";
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    new window.Chart(canvas, config);
  }

  function dashboard(data) {
    var fmt = money(data.currency);
    var primary = css("--bs-primary", "#4f46e5");
    var secondary = css("--bs-info", "#0dcaf0");
    var success = css("--bs-success", "#198754");

    document.querySelectorAll('canvas[data-chart="funnel"]').forEach(function (canvas) {
      var funnel = data.funnels.filter(function (f) { return f.id === canvas.dataset.pipeline; })[0];
      if (!funnel) return;
      draw(canvas, {
        type: "bar",
        data: {
          labels: funnel.labels,
          datasets: [
            { label: canvas.dataset.valueLabel || "Value", data: funnel.amounts, backgroundColor: primary },
            { label: canvas.dataset.weightedLabel || "Weighted", data: funnel.weighted, backgroundColor: secondary }
          ]
        },
        options: {
          indexAxis: "y",
          onClick: drillDown(funnel.urls),
          scales: { x: { beginAtZero: true, ticks: { callback: fmt } } },
          plugins: {
            tooltip: {
              callbacks: {
                label: function (ctx) { return ctx.dataset.label + ": " + fmt(ctx.parsed.x); },
                afterBody: function (items) { return funnel.deals[items[0].dataIndex] + " deals"; }
              }
            }
          }
        }
      });
    });

    document.querySelectorAll('canvas[data-chart="conversion"]').forEach(function (canvas) {
      var c = data.conversion;
      draw(canvas, {
        type: "line",
        data: {
          labels: c.labels,
          datasets: [{ label: "%", data: c.rates, borderColor: success, backgroundColor: success, spanGaps: false, tension: 0.2, pointRadius: 4 }]
        },
        options: {
          onClick: drillDown(c.urls),
          scales: { y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + " %"; } } } },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: function (ctx) {
                  var i = ctx.dataIndex;
                  return ctx.parsed.y + " % (" + c.won[i] + " / " + c.closed[i] + ")";
                }
              }
            }
          }
        }
      });
    });

    document.querySelectorAll('canvas[data-chart="forecast"]').forEach(function (canvas) {
      var f = data.forecast;
      draw(canvas, {
        type: "bar",
        data: {
          labels: f.labels,
          datasets: [
            { label: canvas.dataset.weightedLabel || "Weighted", data: f.weighted, backgroundColor: primary },
            { label: canvas.dataset.valueLabel || "Value", data: f.amounts, backgroundColor: secondary }
          ]
        },
        options: {
          onClick: drillDown(f.urls),
          scales: { y: { beginAtZero: true, ticks: { callback: fmt } } },
          plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + fmt(ctx.parsed.y); } } } }
        }
      });
    });
  }

  function analytics(data) {
    var fmt = money(data.currency);
    document.querySelectorAll('canvas[data-chart="leaderboard"]').forEach(function (canvas) {
      draw(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{ label: canvas.dataset.label || "Revenue", data: data.revenue, backgroundColor: css("--bs-primary", "#4f46e5") }]
        },
        options: {
          indexAxis: "y",
          onClick: drillDown(data.urls),
          scales: { x: { beginAtZero: true, ticks: { callback: fmt } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (ctx) { return fmt(ctx.parsed.x); } } } }
        }
      });
    });
  }

  // The team performance period: editing a date means "Custom dates"; picking a preset clears the dates
  // (the server shows the preset's own once applied).
  function periodForm() {
    var form = document.querySelector("form[data-period-form]");
    if (!form) return;
    var select = form.querySelector('select[name="period"]');
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
    if (!window.Chart) return;
    var board = readJSON("sales-dashboard-data");
    if (board) dashboard(board);
    var team = readJSON("sales-analytics-data");
    if (team) analytics(team);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
