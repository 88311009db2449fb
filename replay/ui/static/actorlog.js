// actorlog's charts, drawn with Observable Plot (vendored beside this file, with d3; no network).
// Each <figure class="actorlog-chart" data-chart="KIND" data-source="ID"> is drawn from the JSON
// in <script type="application/json" id="ID">, which the page rendered from the log.
(function () {
  "use strict";

  var COLORS = {
    failure: "#d62728", decision: "#ff7f0e", retry: "#bcbd22", lifecycle: "#1f77b4",
    message: "#7f7f7f", measurement: "#17becf", other: "#9467bd"
  };
  var SYMBOLS = {
    failure: "cross", decision: "diamond", retry: "triangle", lifecycle: "circle",
    message: "circle", measurement: "circle", other: "circle"
  };

  function when(d) { return new Date(d.ts * 1000); }

  function timeline(data, width) {
    var actors = data.actors;
    var categories = Object.keys(COLORS).filter(function (c) {
      return data.events.some(function (e) { return e.category === c; });
    });
    return Plot.plot({
      width: width, marginLeft: 110, height: Math.max(140, 46 * actors.length + 60),
      x: {type: "utc", label: "time (UTC)", grid: true},
      y: {domain: actors, label: "actor"},
      color: {domain: categories, range: categories.map(function (c) { return COLORS[c]; }), legend: true},
      symbol: {domain: categories, range: categories.map(function (c) { return SYMBOLS[c]; })},
      marks: [
        Plot.ruleX(data.events.filter(function (e) { return e.category === "failure"; }),
                   {x: when, stroke: COLORS.failure, strokeOpacity: 0.25}),
        Plot.dot(data.events, {
          x: when, y: "actor", stroke: "category", fill: "category", symbol: "category", r: 5,
          href: function (e) { return "#event-" + e.seq; }, target: "_self",
          title: function (e) { return "seq " + e.seq + " · " + e.kind + "\n" + e.time + "\n" + e.summary; }
        })
      ]
    });
  }

  function series(data, width) {
    var marks = [
      Plot.dot(data.points, {
        x: when, y: "value", stroke: "series", r: 3,
        title: function (p) { return p.time + "\n" + p.series + " = " + p.value; }
      })
    ];
    if (data.quantiles.length) {
      marks.push(Plot.line(data.quantiles, {x: when, y: "value", z: "quantile", stroke: "quantile", strokeWidth: 2}));
    }
    return Plot.plot({
      width: width, height: 360, marginLeft: 60,
      x: {type: "utc", label: "time (UTC)", grid: true},
      y: {label: data.unit ? data.name + " (" + data.unit + ")" : data.name, grid: true},
      color: {legend: true},
      marks: marks
    });
  }

  function counts(data, width) {
    if (!data.events.length) {
      var empty = document.createElement("p");
      empty.className = "actorlog-empty";
      empty.textContent = data.empty;
      return empty;
    }
    return Plot.plot({
      width: width, height: 260, marginLeft: 50,
      x: {type: "utc", label: "time (UTC)"},
      y: {label: data.label, grid: true},
      color: {legend: true},
      marks: [
        Plot.rectY(data.events, Plot.binX({y: "count"}, {x: when, fill: "group", thresholds: 40})),
        Plot.ruleY([0])
      ]
    });
  }

  var DRAW = {timeline: timeline, series: series, counts: counts};

  function draw() {
    var figures = document.querySelectorAll("figure.actorlog-chart");
    for (var i = 0; i < figures.length; i++) {
      var figure = figures[i];
      var source = document.getElementById(figure.dataset.source);
      var data = JSON.parse(source.textContent);
      var width = Math.max(480, Math.min(1100, figure.clientWidth || 900));
      var chart = DRAW[figure.dataset.chart](data, width);
      figure.insertBefore(chart, figure.firstChild);
      figure.dataset.drawn = "true";
    }
    document.body.dataset.chartsDrawn = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
