// Airlock dashboard: live lists over server-sent events. No inline script anywhere
// (the Content-Security-Policy allows only this file); fragments come from the same
// server, already escaped, and replace a container's content.
(function () {
  "use strict";
  var live = document.querySelectorAll("[data-live]");
  if (!live.length || !window.EventSource) {
    return;
  }
  function refresh(box) {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          window.location.assign("/login");
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        var typing = box.contains(document.activeElement) && document.activeElement.value;
        if (html !== null && !typing) {
          box.innerHTML = html;
        }
      });
  }
  var source = new EventSource("/events");
  source.onopen = function () {
    // Whatever changed between rendering the page and opening the stream is fetched now.
    live.forEach(refresh);
    document.body.setAttribute("data-stream", "open");
  };
  live.forEach(function (box) {
    source.addEventListener(box.getAttribute("data-live"), function () {
      refresh(box);
    });
  });
  source.onerror = function () {
    // The browser reconnects by itself; a revoked login turns into a redirect on refresh.
    live.forEach(refresh);
  };
})();
