// opswatch dashboard: the only script. Ctrl/Cmd+Enter runs the query box.
"use strict";
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  var form = event.target && event.target.form;
  if (form && form.id === "query-form") {
    event.preventDefault();
    form.requestSubmit ? form.requestSubmit() : form.submit();
  }
});
