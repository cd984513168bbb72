/* The contract form follows the chosen type. The server renders the page for the type it
   knows; when the type changes here, the other types' fieldsets and fields are hidden (not
   removed: what was typed stays, and the server ignores fields of other types) and each
   label says whether the new type requires the field. */
(function () {
  var type = document.getElementById("id_type");
  if (!type) return;
  function has(element, attribute) {
    var types = element.getAttribute(attribute);
    return types === "*" || types.split(" ").indexOf(type.value) !== -1;
  }
  function sync() {
    document.querySelectorAll(".contract-form [data-types]").forEach(function (element) {
      element.hidden = !has(element, "data-types");
    });
    document.querySelectorAll(".contract-form [data-required-types]").forEach(function (element) {
      var required = has(element, "data-required-types");
      element.querySelectorAll("[data-when]").forEach(function (mark) {
        mark.hidden = (mark.getAttribute("data-when") === "required") !== required;
      });
      element.querySelectorAll("input, select, textarea").forEach(function (input) {
        if (required) input.setAttribute("aria-required", "true"); else input.removeAttribute("aria-required");
      });
    });
  }
  type.addEventListener("change", sync);
  sync();
})();
