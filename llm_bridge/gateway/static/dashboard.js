/* llm-bridge gateway dashboard: draws the page's charts with uPlot (vendored beside this
   file) from the JSON the server wrote into <script type="application/json"
   id="dashboard-data">. No inline script: the page's Content-Security-Policy allows only
   the gateway's own files. Each chart's element gets data-drawn="true" once drawn. */
(function () {
  "use strict";

  var PALETTE = [
    "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2",
    "#ca8a04", "#db2777", "#64748b", "#dc2626"
  ];
  var HEIGHT = 260;
  var source = document.getElementById("dashboard-data");
  if (!source || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var drawn = [];

  function format(value, unit) {
    if (value == null || !isFinite(value)) {
      return "–";
    }
    if (unit === "CNY") {
      var size = Math.abs(value);
      return value === 0 ? "0" : value.toFixed(size < 0.01 ? 6 : size < 1 ? 4 : 2);
    }
    return Math.round(value).toLocaleString("en-US");
  }

  function widthOf(element) {
    return Math.max(320, Math.floor(element.getBoundingClientRect().width) || 600);
  }

  // Stacked bars: series k is drawn at the sum of series 0..k, the tallest first, so each
  // bar's lower parts paint over it; the legend shows each series' own value.
  function stackedBars(element, days, stack, unit, line) {
    var count = stack.labels.length;
    var running = days.map(function () { return 0; });
    var sums = [];
    for (var i = 0; i < count; i++) {
      running = running.map(function (value, day) {
        return value + (stack.values[i][day] || 0);
      });
      sums.push(running.slice());
    }
    var bars = uPlot.paths.bars({ size: [0.7, 48] });
    var series = [{ label: "Day (UTC)" }];
    var columns = [days];
    for (var k = count - 1; k >= 0; k--) {
      series.push(barSeries(stack, k, unit, bars));
      columns.push(sums[k]);
    }
    if (line) {
      series.push({
        label: line.label,
        stroke: "#111827",
        width: 2,
        dash: [6, 4],
        points: { show: false },
        value: function (u, value) { return format(value, unit); }
      });
      columns.push(line.values);
    }
    var half = 43200;
    var options = {
      width: widthOf(element),
      height: HEIGHT,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: series,
      scales: {
        x: {
          time: true,
          range: function () { return [days[0] - half, days[days.length - 1] + half]; }
        },
        y: {
          range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }
        }
      },
      axes: [
        {},
        {
          size: 72,
          values: function (u, splits) {
            return splits.map(function (value) { return format(value, unit); });
          }
        }
      ],
      cursor: { points: { show: false } }
    };
    var chart = new uPlot(options, columns, element);
    element.setAttribute("data-drawn", "true");
    drawn.push([chart, element]);
  }

  function barSeries(stack, k, unit, bars) {
    var color = PALETTE[k % PALETTE.length];
    return {
      label: stack.labels[k],
      stroke: color,
      fill: color + "cc",
      width: 1,
      paths: bars,
      points: { show: false },
      value: function (u, value, seriesIndex, index) {
        return index == null ? "–" : format(stack.values[k][index], unit);
      }
    };
  }

  function draw() {
    var days = data.days;
    var charts = document.querySelectorAll(".chart[data-series]");
    for (var i = 0; i < charts.length; i++) {
      var element = charts[i];
      var name = element.getAttribute("data-series");
      var unit = element.getAttribute("data-unit");
      var stack = data[name];
      if (!stack) {
        continue;
      }
      var line = stack.estimated
        ? { label: "estimated", values: stack.estimated }
        : null;
      stackedBars(element, days, stack, unit, line);
    }
    document.body.setAttribute("data-charts", String(drawn.length));
  }

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      drawn.forEach(function (pair) {
        pair[0].setSize({ width: widthOf(pair[1]), height: HEIGHT });
      });
    }, 150);
  });

  draw();
})();
