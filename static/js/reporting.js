// Dashboard charts: data from <script type="application/json" id="report-data">, Chart.js
// served from static/vendor/chartjs (no CDN, no inline script).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var el = document.getElementById("report-data");
    if (!el || typeof window.Chart === "undefined") return;
    var data = JSON.parse(el.textContent);
    var L = data.labels;
    var fmt = new Intl.NumberFormat(document.documentElement.lang || "id");
    var common = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: "bottom" } },
      scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return fmt.format(v); } } } }
    };
    function make(id, config) {
      var canvas = document.getElementById(id);
      if (canvas) new window.Chart(canvas, config);
    }
    make("chart-series", {
      type: "line",
      data: {
        labels: data.series.map(function (r) { return r.month; }),
        datasets: [
          { label: L.actual, data: data.series.map(function (r) { return r.actual; }), borderColor: "#0a6e3c", backgroundColor: "#0a6e3c" },
          { label: L.target, data: data.series.map(function (r) { return r.target; }), borderColor: "#0b5cad", borderDash: [6, 4], pointRadius: 0 },
          { label: L.projected, data: data.series.map(function (r) { return r.projected; }), borderColor: "#e08a00", borderDash: [2, 3], pointRadius: 0 }
        ]
      },
      options: common
    });
    var bar = function (rows, label, color, horizontal) {
      return {
        type: "bar",
        data: { labels: rows.map(function (r) { return r.label; }),
                datasets: [{ label: label, data: rows.map(function (r) { return r.active; }), backgroundColor: color }] },
        options: Object.assign({}, common, horizontal ? { indexAxis: "y", scales: { x: { beginAtZero: true } } } : {})
      };
    };
    make("chart-region", bar(data.region, L.active, "#0a6e3c", true));
    make("chart-occupation", bar(data.occupation, L.active, "#0b5cad", true));
    make("chart-channel", bar(data.channel, L.active, "#6a3fb5", false));

    // Cohort retention: the latest cohorts' curves and the average of all, in % active.
    var ce = document.getElementById("cohort-data");
    if (!ce) return;
    var cd = JSON.parse(ce.textContent);
    var pct = function (v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; };
    var palette = ["#0a6e3c", "#0b5cad", "#6a3fb5", "#e08a00", "#b3261e", "#00838f"];
    var lines = cd.cohorts.map(function (c, i) {
      return { label: c.label, data: c.rates.map(pct), borderColor: palette[i % palette.length],
               backgroundColor: palette[i % palette.length], pointRadius: 1, borderWidth: 1.5 };
    });
    lines.push({ label: cd.labels.average, data: cd.average.map(pct), borderColor: "#222",
                 backgroundColor: "#222", borderWidth: 3, pointRadius: 0 });
    make("chart-cohorts", {
      type: "line",
      data: { labels: cd.months, datasets: lines },
      options: Object.assign({}, common, {
        scales: { x: { title: { display: true, text: cd.labels.month } },
                  y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } } }
      })
    });
    make("chart-flows", {
      type: "bar",
      data: { labels: cd.flows.map(function (r) { return r.month; }),
              datasets: [
                { label: cd.labels.lapses, data: cd.flows.map(function (r) { return r.lapses; }), backgroundColor: "#b3261e" },
                { label: cd.labels.reactivations, data: cd.flows.map(function (r) { return r.reactivations; }), backgroundColor: "#0a6e3c" }
              ] },
      options: common
    });
  });
})();
