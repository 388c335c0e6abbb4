// seedswarm validator dashboard: refresh the server-rendered content every half round.
(function () {
  "use strict";
  var body = document.body;
  var badge = document.getElementById("live");
  var main = document.getElementById("main");
  var seconds = parseFloat(body.getAttribute("data-refresh-s")) || 5;
  var open = {};

  function rememberOpen() {
    open = {};
    main.querySelectorAll("details[open]").forEach(function (d) {
      open[d.getAttribute("data-miner")] = true;
    });
  }

  function restoreOpen() {
    main.querySelectorAll("details").forEach(function (d) {
      if (open[d.getAttribute("data-miner")]) { d.setAttribute("open", ""); }
    });
  }

  function refresh() {
    fetch("/?part=main", { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        rememberOpen();
        main.innerHTML = html;
        restoreOpen();
        var count = parseInt(body.getAttribute("data-refreshes") || "0", 10) + 1;
        body.setAttribute("data-refreshes", String(count));
        badge.textContent = "live · updated " + new Date().toLocaleTimeString();
        badge.className = "badge live";
      })
      .catch(function (error) {
        badge.textContent = "offline: " + error.message;
        badge.className = "badge offline";
      })
      .then(function () { window.setTimeout(refresh, seconds * 1000); });
  }

  refresh();
})();
