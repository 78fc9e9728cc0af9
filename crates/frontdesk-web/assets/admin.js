// frontdesk admin conveniences; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
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
