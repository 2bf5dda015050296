// IMSP portal: check a chosen file's size in the browser before sending it.
// A file input carries its limit and messages from the server:
//   data-max-bytes, data-too-large (over the limit), data-empty (nothing chosen).
// The server checks again; this only spares a long upload that would be refused.
"use strict";

(function () {
  function messageBox(input) {
    var box = input.parentNode.querySelector(".error[data-upload-check]");
    if (!box) {
      box = document.createElement("span");
      box.className = "error";
      box.setAttribute("role", "alert");
      box.setAttribute("data-upload-check", "");
      input.insertAdjacentElement("afterend", box);
    }
    return box;
  }

  function problemOf(input) {
    var file = input.files && input.files[0];
    if (!file) {
      return input.getAttribute("data-empty") || "";
    }
    var limit = Number(input.getAttribute("data-max-bytes"));
    if (limit > 0 && file.size > limit) {
      return input.getAttribute("data-too-large") || "";
    }
    return "";
  }

  function check(input, onSubmit) {
    var problem = problemOf(input);
    if (!onSubmit && !(input.files && input.files[0])) {
      problem = "";
    }
    var box = messageBox(input);
    box.textContent = problem;
    box.hidden = !problem;
    return !problem;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.hasAttribute("data-max-bytes")) {
      check(input, false);
    }
  });

  document.addEventListener("submit", function (event) {
    var inputs = event.target.querySelectorAll("input[type=file][data-max-bytes]");
    for (var i = 0; i < inputs.length; i += 1) {
      if (!check(inputs[i], true)) {
        event.preventDefault();
        inputs[i].focus();
        return;
      }
    }
  });
})();
