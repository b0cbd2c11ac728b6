// The console's own script: the overview's chart (Chart.js). Everything else is plain HTML
// forms and links, with htmx refreshing parts of some pages.
"use strict";

function drawCharts(root) {
  if (typeof Chart === "undefined") return;
  root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    if (canvas.dataset.drawn) return;
    var data = JSON.parse(canvas.dataset.chart);
    canvas.dataset.drawn = "1";
    new Chart(canvas, {
      data: {
        labels: data.labels,
        datasets: [
          { type: "bar", label: "items written", data: data.writes, yAxisID: "writes",
            backgroundColor: "#93c5fd", borderColor: "#1e3a8a", borderWidth: 1 },
          { type: "line", label: "passes", data: data.passes, yAxisID: "passes",
            borderColor: "#14532d", backgroundColor: "#14532d", tension: 0.2 },
          { type: "line", label: "failed passes", data: data.failed, yAxisID: "passes",
            borderColor: "#b91c1c", backgroundColor: "#b91c1c", borderDash: [4, 3] }
        ]
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          writes: { position: "right", beginAtZero: true, title: { display: true, text: "items written" } },
          passes: { position: "left", beginAtZero: true, title: { display: true, text: "passes" } }
        }
      }
    });
  });
}

document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
