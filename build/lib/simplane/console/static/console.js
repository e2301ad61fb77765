// simplane console: stacked usage charts (uPlot) and live updates (Server-Sent Events), with no
// inline script anywhere (the Content-Security-Policy allows none).
(function () {
  "use strict";
  var COLOURS = { home: "#0b5cad", national: "#b35c00", international: "#7b2c9e", data: "#0b5cad" };

  function bytes(v) {
    if (v == null) return "";
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }

  function draw(el) {
    if (!window.uPlot || el.dataset.drawn) return;
    var spec = JSON.parse(el.dataset.chart);
    var names = Object.keys(spec.series);
    var sums = new Array(spec.x.length).fill(0);
    var stacked = names.map(function (name) {
      return spec.series[name].map(function (v, i) { sums[i] += v; return sums[i]; });
    });
    // Drawn from the tallest stack down, so every layer shows.
    var order = names.map(function (_, i) { return i; }).reverse();
    var bars = uPlot.paths.bars({ size: [0.8, 40] });
    var step = spec.granularity === "hourly" ? 3600 : 86400;
    var first = spec.x[0], last = spec.x[spec.x.length - 1];
    var opts = {
      width: Math.max(el.clientWidth - 8, 260), height: 220,
      scales: {
        x: { time: true, range: function () { return [first - step / 2, last + step / 2]; } },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 100]; } },
      },
      axes: [{}, { values: function (u, vals) { return vals.map(bytes); }, size: 70 }],
      series: [{ label: "Period" }].concat(order.map(function (i) {
        var name = names[i];
        return { label: name, fill: COLOURS[name] || "#555", stroke: COLOURS[name] || "#555",
                 paths: bars, points: { show: false },
                 value: function (u, v, s, idx) { return idx == null ? "" : bytes(spec.series[name][idx]); } };
      })),
      legend: { live: false },
    };
    var data = [spec.x].concat(order.map(function (i) { return stacked[i]; }));
    el.dataset.drawn = "1";
    el.textContent = "";
    el.uplot = new uPlot(opts, data, el);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  function live() {
    var url = document.body.dataset.live;
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    ["sessions", "commands", "events"].forEach(function (name) {
      source.addEventListener(name, function () {
        document.body.dispatchEvent(new CustomEvent("live-" + name));
      });
    });
    document.body.dataset.liveState = "connecting";
    source.addEventListener("open", function () { document.body.dataset.liveState = "open"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    live();
    document.body.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); });
    if (window.ResizeObserver) {
      var resized = new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          var el = entry.target;
          if (el.uplot) el.uplot.setSize({ width: Math.max(el.clientWidth - 8, 260), height: 220 });
        });
      });
      document.querySelectorAll("[data-chart]").forEach(function (el) { resized.observe(el); });
    }
  });
})();
