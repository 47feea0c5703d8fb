// Cost pages: draw every Plotly figure whose JSON sits in a <script type="application/json">
// data block (never executed, so the strict CSP holds). <div data-chart="ID"> names the block.
// A click on a bar whose customdata is a same-site path opens that drill-down page.
(function () {
  "use strict";
  function draw(el) {
    var block = document.getElementById(el.getAttribute("data-chart"));
    if (!block || typeof Plotly === "undefined") { return; }
    var fig = JSON.parse(block.textContent);
    Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false }).then(function () {
      el.setAttribute("data-rendered", String(fig.data.length));
    });
    el.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var target = point && point.customdata;
      if (typeof target === "string" && target.charAt(0) === "/" && target.charAt(1) !== "/") {
        window.location.assign(target);
      }
    });
  }
  function init() {
    var nodes = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < nodes.length; i++) { draw(nodes[i]); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
