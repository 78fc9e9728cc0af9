// frontdesk admin conveniences; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".fda-select-all").forEach(function (box) {
    box.hidden = false;
    box.addEventListener("change", function () {
      var form = box.closest("form");
      if (!form) return;
      form.querySelectorAll('input[name="ids"]').forEach(function (c) {
        c.checked = box.checked;
      });
    });
  });
});
