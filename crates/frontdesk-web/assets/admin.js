// frontdesk admin conveniences; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // The nav and the users-list filters are <details>, folded on phones. On
  // wide screens the stylesheet shows them whole even when closed; opening
  // them here as well keeps browsers without ::details-content, and tools
  // that read a closed <details> as hidden, in step with what is on screen.
  var wide = window.matchMedia("(min-width: 601px)");
  var fit = function () {
    document.querySelectorAll(".fda-navmenu, .fda-filterbox").forEach(function (d) {
      d.open = wide.matches;
    });
  };
  fit();
  wide.addEventListener("change", fit);
  document.querySelectorAll(".fda-select-all").forEach(function (box) {
    box.hidden = false;
    box.addEventListener("change", function () {
      // The row boxes belong to the bulk form by their form attribute.
      var form = box.form || box.closest("form");
      if (!form) return;
      Array.prototype.forEach.call(form.elements, function (c) {
        if (c.name === "ids") c.checked = box.checked;
      });
    });
  });
});
