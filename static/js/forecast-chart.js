// The forecast page's chart (Chart.js): closed won and commit as bars, expected / worst / best case and quota as
// lines, one point per month, drawn from the figures the page embeds with json_script (#forecast-chart-data).
// Clicking a point opens the deals behind it, like the links of the table under the chart. No inline scripts
// (CSP).
(function () {
  "use strict";

  var STYLE = {
    closed_won: { type: "bar", color: "--bs-success", fallback: "#198754", order: 3 },
    commit: { type: "bar", color: "--bs-primary", fallback: "#4f46e5", order: 4 },
    expected: { type: "line", color: "--bs-info", fallback: "#0dcaf0", order: 1 },
    worst_case: { type: "line", color: "--bs-danger", fallback: "#dc3545", order: 1, dash: [6, 4] },
    best_case: { type: "line", color: "--bs-teal", fallback: "#20c997", order: 1, dash: [6, 4] },
    quota: { type: "line", color: "--bs-secondary", fallback: "#6c757d", order: 0, dash: [2, 3], stepped: true }
  };

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

  function init() {
    var canvas = document.getElementById("forecast-chart");
    var data = readJSON("forecast-chart-data");
    if (!canvas || !data || !window.Chart || canvas.dataset.drawn) return;
    canvas.dataset.drawn = "1";
    var fmt = money(data.currency);
    var datasets = data.series.map(function (series) {
      var style = STYLE[series.key] || { type: "line", color: "--bs-body-color", fallback: "#333", order: 1 };
      var color = css(style.color, style.fallback);
      return {
        type: style.type,
        label: series.label,
        data: series.values.map(Number),
        urls: series.urls,
        order: style.order,
        backgroundColor: color,
        borderColor: color,
        borderWidth: style.type === "line" ? 2 : 0,
        borderDash: style.dash || [],
        stepped: style.stepped ? "middle" : false,
        pointRadius: style.type === "line" ? 3 : 0,
        tension: 0
      };
    });
    new window.Chart(canvas, {
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return fmt(v); } } } },
        plugins: {
          tooltip: {
            callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + fmt(ctx.parsed.y); } }
          }
        },
        onClick: function (event, elements, chart) {
          var hit = chart.getElementsAtEventForMode(event, "nearest", { intersect: true }, false)[0] || elements[0];
          if (!hit) return;
          var urls = chart.data.datasets[hit.datasetIndex].urls;
          var url = urls && urls[hit.index];
          if (url) window.location.assign(url);
        }
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
