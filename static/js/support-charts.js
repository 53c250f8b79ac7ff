// Charts of the support reports (Chart.js), drawn from the figures the page embeds with json_script
// (#support-reports-data). Every bar and point links to what is behind it (the answers of that week, the
// agent's tickets), like the tables under each chart. No inline scripts or styles (CSP).
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

  function drillDown(urls) {
    return function (event, elements) {
      if (!elements.length || !urls) return;
      var url = urls[elements[0].index];
      if (url) window.location.assign(url);
    };
  }

  function draw(canvas, config) {
    if (!canvas || canvas.dataset.drawn || !window.Chart) return;
    canvas.dataset.drawn = "1";
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    new window.Chart(canvas, config);
  }

  function one(name) {
    return document.querySelector('canvas[data-chart="' + name + '"]');
  }

  function satisfaction(data) {
    var primary = css("--bs-primary", "#4f46e5");
    var muted = css("--bs-secondary-bg", "#e9ecef");
    var success = css("--bs-success", "#198754");
    var p = data.periods;

    var csat = one("csat-trend");
    if (csat) {
      draw(csat, {
        type: "bar",
        data: {
          labels: p.labels,
          datasets: [
            { type: "line", label: csat.dataset.averageLabel || "CSAT", data: p.csat_average, yAxisID: "score",
              borderColor: primary, backgroundColor: primary, spanGaps: true, tension: 0 },
            { label: csat.dataset.responsesLabel || "Answers", data: p.csat_responses, yAxisID: "count",
              backgroundColor: muted }
          ]
        },
        options: {
          onClick: drillDown(p.urls),
          scales: {
            score: { position: "left", min: 1, max: 5, ticks: { stepSize: 1 } },
            count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } }
          }
        }
      });
    }

    var nps = one("nps-trend");
    if (nps) {
      draw(nps, {
        type: "bar",
        data: {
          labels: p.labels,
          datasets: [
            { type: "line", label: nps.dataset.scoreLabel || "NPS", data: p.nps, yAxisID: "score",
              borderColor: success, backgroundColor: success, spanGaps: true, tension: 0 },
            { label: nps.dataset.responsesLabel || "Answers", data: p.nps_responses, yAxisID: "count",
              backgroundColor: muted }
          ]
        },
        options: {
          onClick: drillDown(p.nps_urls),
          scales: {
            score: { position: "left", min: -100, max: 100 },
            count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } }
          }
        }
      });
    }

    var agents = one("agent-csat");
    if (agents && data.agents.labels.length) {
      var a = data.agents;
      draw(agents, {
        type: "bar",
        data: {
          labels: a.labels,
          datasets: [{
            label: agents.dataset.averageLabel || "CSAT", data: a.csat_average, backgroundColor: primary,
            maxBarThickness: 28
          }]
        },
        options: {
          indexAxis: "y",
          onClick: drillDown(a.urls),
          scales: { x: { min: 0, max: 5 } },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { afterLabel: function (ctx) { return "(" + a.csat_responses[ctx.dataIndex] + ")"; } } }
          }
        }
      });
    }
  }

  function performance(data) {
    var canvas = one("agent-performance");
    if (!canvas || !data.labels.length) return;
    var primary = css("--bs-primary", "#4f46e5");
    var success = css("--bs-success", "#198754");
    draw(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: canvas.dataset.handledLabel || "Resolved", data: data.handled, yAxisID: "count", backgroundColor: primary },
          { label: canvas.dataset.slaLabel || "SLA %", data: data.sla_percent, yAxisID: "percent", backgroundColor: success }
        ]
      },
      options: {
        onClick: drillDown(data.urls),
        scales: {
          count: { position: "left", beginAtZero: true, ticks: { precision: 0 } },
          percent: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
                     ticks: { callback: function (v) { return v + " %"; } } }
        }
      }
    });
  }

  // The promoters / passives / detractors bar: widths from data-share (percent), set here since CSP
  // forbids inline styles.
  function splitBars() {
    document.querySelectorAll(".nps-split-bar[data-share]").forEach(function (bar) {
      var share = parseFloat(bar.dataset.share);
      bar.style.width = (isNaN(share) ? 0 : Math.max(0, Math.min(100, share))) + "%";
    });
  }

  function init() {
    splitBars();
    var data = readJSON("support-reports-data");
    if (!data) return;
    if (data.satisfaction) satisfaction(data.satisfaction);
    if (data.performance) performance(data.performance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
