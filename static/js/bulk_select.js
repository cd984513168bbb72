/* Bulk selection on a list: a "select all on this page" box, a count, and action buttons
   that wait until something is selected. Without JavaScript every box still works on
   its own and the server refuses an empty selection with a message. */
(function () {
  document.querySelectorAll("form[data-bulk]").forEach(function (form) {
    var all = form.querySelector("input[data-bulk-all]");
    var count = form.querySelector("[data-bulk-count]");
    var boxes = function () { return form.querySelectorAll("input[type=checkbox][data-bulk-item]"); };
    function sync() {
      var items = boxes(), chosen = 0;
      items.forEach(function (box) { if (box.checked) chosen += 1; });
      if (all) {
        all.checked = items.length > 0 && chosen === items.length;
        all.indeterminate = chosen > 0 && chosen < items.length;
      }
      if (count) count.textContent = chosen === 1 ? "1 selected" : chosen + " selected";
      form.querySelectorAll("[data-bulk-action]").forEach(function (button) { button.disabled = chosen === 0; });
      form.classList.toggle("bulk-active", chosen > 0);
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes().forEach(function (box) { box.checked = all.checked; });
        sync();
      });
    }
    form.addEventListener("change", function (event) {
      if (event.target.hasAttribute("data-bulk-item")) sync();
    });
    sync();
  });
})();
