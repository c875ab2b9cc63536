// kubetrail UI: small conveniences only; every page works without script.
"use strict";

// Drag across a histogram to narrow the search to that range: the filter's since/until terms are replaced.
function brushable(svg) {
  const data = svg.dataset;
  const width = Number(data.width), left = Number(data.left), plot = Number(data.plot);
  const start = Date.parse(data.start), step = Number(data.step) * 1000, count = Number(data.count);
  const ns = "http://www.w3.org/2000/svg";
  let from = null, band = null;
  const position = (event) => {
    const box = svg.getBoundingClientRect();
    const x = (event.clientX - box.left) * width / box.width;
    return Math.min(Math.max(x, left), left + plot);
  };
  const moment = (x) => new Date(start + (x - left) / plot * step * count);
  const stamp = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");
  svg.addEventListener("mousedown", (event) => {
    event.preventDefault();
    from = position(event);
    band = document.createElementNS(ns, "rect");
    band.setAttribute("class", "brush");
    band.setAttribute("y", "0");
    band.setAttribute("height", svg.viewBox.baseVal.height);
    band.setAttribute("x", from);
    band.setAttribute("width", "0");
    svg.appendChild(band);
  });
  svg.addEventListener("mousemove", (event) => {
    if (from === null) { return; }
    const x = position(event);
    band.setAttribute("x", Math.min(from, x));
    band.setAttribute("width", Math.abs(x - from));
  });
  window.addEventListener("mouseup", (event) => {
    if (from === null) { return; }
    const x = position(event);
    const low = Math.min(from, x), high = Math.max(from, x);
    from = null;
    if (high - low < 3) { band.remove(); return; }
    const kept = (data.q || "").replace(/(^|\s)(since|until)=("(?:[^"\\]|\\.)*"|\S+)/g, " ").trim();
    const since = new Date(Math.floor(moment(low).getTime() / 1000) * 1000);
    const until = new Date(Math.ceil(moment(high).getTime() / 1000) * 1000);
    const text = `${kept} since=${stamp(since)} until=${stamp(until)}`.trim();
    window.location.assign(`${data.action}?q=${encodeURIComponent(text)}`);
  });
  // a click on a column is handled by its link; a drag must not follow it
  svg.addEventListener("click", (event) => { if (band && band.isConnected) { event.preventDefault(); } }, true);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.target);
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent).then(() => { button.textContent = "copied"; });
      }
    });
  });
  document.querySelectorAll("svg.brushable").forEach(brushable);
  document.addEventListener("keydown", (event) => {
    const active = document.activeElement;
    if (event.key === "/" && active && !["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName)) {
      const box = document.getElementById("filter") || document.querySelector("header input[name=q]");
      if (box) { event.preventDefault(); box.focus(); }
    }
  });
});
