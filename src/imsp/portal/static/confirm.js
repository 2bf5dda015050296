// IMSP portal: ask before an action that cannot be undone (delete, deactivate, password reset).
// A form carries its question, written by the server, in data-confirm.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
