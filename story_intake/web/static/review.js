// The story page's keyboard: 1-4 toggle the theme boxes, Enter saves, u undoes the last
// toggle. Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  var form = document.getElementById("themes-form");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=theme]"));
  var undo = [];
  function typing(target) {
    return target && (target.tagName === "SELECT" || target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && target.type !== "checkbox"));
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) { return; }
    var number = parseInt(event.key, 10);
    if (number >= 1 && number <= boxes.length && number <= 4) {
      var box = boxes[number - 1];
      undo.push(box);
      box.checked = !box.checked;
      box.focus();
      event.preventDefault();
    } else if (event.key === "u" && undo.length) {
      var last = undo.pop();
      last.checked = !last.checked;
      event.preventDefault();
    } else if (event.key === "Enter" && (document.activeElement === document.body ||
               (form.contains(document.activeElement) &&
                document.activeElement.type === "checkbox"))) {
      form.requestSubmit();
      event.preventDefault();
    }
  });
})();
