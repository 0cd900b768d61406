// The console's only script: live updates over server-sent events. Every piece of HTML it inserts was
// rendered and escaped by the server; it never builds markup from data itself.
"use strict";
(function () {
  var live = document.querySelector("[data-live]");
  if (live) {
    var busy = false;
    var again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(live.getAttribute("data-live"), { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) { if (html !== null) { live.innerHTML = html; } })
        .catch(function () {})
        .then(function () { busy = false; if (again) { again = false; refresh(); } });
    };
    new EventSource("/events/changes").addEventListener("changed", refresh);
  }
  var list = document.querySelector("tbody[data-stream]");
  if (list) {
    var none = document.getElementById("none");
    new EventSource(list.getAttribute("data-stream")).addEventListener("invocation", function (event) {
      var rows = document.createElement("tbody");
      rows.innerHTML = event.data;
      while (rows.lastElementChild) { list.insertBefore(rows.lastElementChild, list.firstChild); }
      if (none) { none.remove(); none = null; }
    });
  }
})();
