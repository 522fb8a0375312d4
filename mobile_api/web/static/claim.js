// Claim page: overlay layer toggles and drawing a box or polygon for a new finding.
// Plain JS, no build step. Coordinates are sent in the photo's own pixels.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  document.querySelectorAll(".toggles input[data-layer]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.body.classList.toggle("hide-" + box.dataset.layer, !box.checked);
    });
  });

  document.querySelectorAll("tr.damage-row").forEach(function (row) {
    var card = row.closest(".photo-card");
    var g = card && card.querySelector('svg g.damage[data-index="' + row.dataset.index + '"]');
    if (!g) return;
    row.addEventListener("mouseenter", function () { g.classList.add("hl"); });
    row.addEventListener("mouseleave", function () { g.classList.remove("hl"); });
  });

  function photoPoint(svg, event) {
    var pt = svg.createSVGPoint();
    pt.x = event.clientX; pt.y = event.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10];
  }

  document.querySelectorAll("form.add-damage").forEach(function (form) {
    var card = form.closest(".photo-card");
    var stage = card.querySelector(".stage");
    var svg = stage.querySelector("svg");
    if (!svg) return;
    var layer = svg.querySelector("g.drawing");
    var shapeInput = form.querySelector('input[name="shape"]');
    var state = form.querySelector(".shape-state");
    var mode = null, points = [], start = null, preview = null;

    function reset() {
      layer.textContent = ""; points = []; start = null; preview = null;
    }
    function show(pts, closed) {
      layer.textContent = "";
      var el = document.createElementNS(SVG, closed ? "polygon" : "polyline");
      el.setAttribute("points", pts.map(function (p) { return p.join(","); }).join(" "));
      el.setAttribute("class", "drawn");
      layer.appendChild(el);
      return el;
    }
    function done(pts) {
      shapeInput.value = JSON.stringify(pts);
      state.textContent = pts.length === 4 && mode === "box" ? "box drawn" : pts.length + "-point polygon drawn";
      mode = null; stage.classList.remove("drawing");
      form.querySelectorAll("button.draw").forEach(function (b) { b.classList.remove("on"); });
    }
    function setMode(next) {
      reset(); shapeInput.value = ""; mode = next;
      stage.classList.toggle("drawing", !!mode);
      form.querySelectorAll("button.draw").forEach(function (b) { b.classList.toggle("on", b.dataset.mode === mode); });
      state.textContent = mode === "box" ? "drag on the photo" : mode === "polygon" ? "click corners, double-click to close" : "nothing drawn";
    }
    form.querySelectorAll("button.draw").forEach(function (b) {
      b.addEventListener("click", function () { setMode(mode === b.dataset.mode ? null : b.dataset.mode); });
    });

    svg.addEventListener("pointerdown", function (e) {
      if (mode !== "box") return;
      e.preventDefault(); start = photoPoint(svg, e); svg.setPointerCapture(e.pointerId);
    });
    svg.addEventListener("pointermove", function (e) {
      if (mode === "box" && start) {
        var p = photoPoint(svg, e);
        show([start, [p[0], start[1]], p, [start[0], p[1]]], true);
      } else if (mode === "polygon" && points.length) {
        show(points.concat([photoPoint(svg, e)]), false);
      }
    });
    svg.addEventListener("pointerup", function (e) {
      if (mode !== "box" || !start) return;
      var p = photoPoint(svg, e);
      var box = [start, [p[0], start[1]], p, [start[0], p[1]]];
      start = null; show(box, true); done(box);
    });
    svg.addEventListener("click", function (e) {
      if (mode !== "polygon") return;
      points.push(photoPoint(svg, e)); show(points, false);
    });
    svg.addEventListener("dblclick", function (e) {
      if (mode !== "polygon") return;
      e.preventDefault();
      // A double-click also fired two clicks: drop the duplicate last point.
      if (points.length > 1) points.pop();
      if (points.length >= 3) { var pts = points.slice(); show(pts, true); done(pts); }
    });
    form.addEventListener("submit", function (e) {
      if (!shapeInput.value) { e.preventDefault(); state.textContent = "draw a box or polygon on the photo first"; state.style.color = "#b3261e"; }
    });
  });
})();
