/* Show only the fieldsets that matter for the chosen contract type. A hidden fieldset is
   also disabled, so it posts nothing; the server ignores other types' terms anyway. */
(function () {
  var type = document.getElementById("id_type");
  if (!type) return;
  function sync() {
    document.querySelectorAll("fieldset[data-types]").forEach(function (fieldset) {
      var applies = fieldset.getAttribute("data-types").split(" ").indexOf(type.value) !== -1;
      fieldset.hidden = !applies;
      fieldset.disabled = !applies;
    });
  }
  type.addEventListener("change", sync);
  sync();
})();
