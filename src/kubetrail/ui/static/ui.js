// kubetrail UI: small conveniences only; every page works without script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.target);
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent).then(() => { button.textContent = "copied"; });
      }
    });
  });
  document.addEventListener("keydown", (event) => {
    const active = document.activeElement;
    if (event.key === "/" && active && !["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName)) {
      const box = document.getElementById("filter") || document.querySelector("header input[name=q]");
      if (box) { event.preventDefault(); box.focus(); }
    }
  });
});
