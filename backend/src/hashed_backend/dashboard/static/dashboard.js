// The live feed: server-sent events from the JSON API's /v1/logs/stream (same origin, session cookie).
// Rows are built with textContent only, so a record's content can never become markup.
(function () {
  "use strict";
  function cell(row, text, badge) {
    var td = document.createElement("td");
    if (badge && text) {
      var span = document.createElement("span");
      span.className = "badge " + text;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text == null ? "" : String(text);
    }
    row.appendChild(td);
    return td;
  }
  function start() {
    var table = document.getElementById("live-feed");
    if (!table || !window.EventSource) return;
    var body = table.querySelector("tbody");
    var status = document.getElementById("live-status");
    var source = new EventSource(table.dataset.stream);
    source.onopen = function () { status.textContent = "live"; status.className = "badge ok"; };
    source.onerror = function () { status.textContent = "reconnecting…"; status.className = "badge bad"; };
    source.addEventListener("record", function (event) {
      var r = JSON.parse(event.data);
      var row = document.createElement("tr");
      row.className = "fresh";
      row.dataset.record = r.id;
      var link = document.createElement("a");
      link.href = "/logs/" + r.id;
      link.textContent = r.time;
      cell(row, "").appendChild(link);
      cell(row, r.agent);
      cell(row, r.seq);
      cell(row, r.kind);
      cell(row, r.tool);
      cell(row, r.effect, true);
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
