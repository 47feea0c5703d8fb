/* The header menus are native <details>/<summary> (they open and close with Enter or Space
   without any script). This only adds what a menu is expected to do besides: Escape closes
   the open menu and puts the focus back on its button, opening one menu closes the others,
   and a click or focus outside closes it. */
(function () {
  "use strict";
  function menus() {
    return Array.prototype.slice.call(document.querySelectorAll("details.nav-menu"));
  }
  function closeAll(except) {
    menus().forEach(function (menu) {
      if (menu !== except) { menu.open = false; }
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelector("details.nav-menu[open]");
    if (!open) { return; }
    open.open = false;
    open.querySelector("summary").focus();
  });
  // Enter and Space on a <summary> arrive as a click, before the menu toggles: closing the
  // other menus here (not on the asynchronous "toggle" event) cannot race a later opening.
  document.addEventListener("click", function (event) {
    var summary = event.target.closest("details.nav-menu > summary");
    if (summary) {
      if (!summary.parentElement.open) { closeAll(summary.parentElement); }
      return;
    }
    if (!event.target.closest("details.nav-menu")) { closeAll(null); }
  });
  document.addEventListener("focusin", function (event) {
    if (!event.target.closest("details.nav-menu")) { closeAll(null); }
  });
})();
