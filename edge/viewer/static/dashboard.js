// The dashboard's numbers: /stats.json twice a second, written into each source's panel.
// Plain ES5 and the DOM only: no external files (the Jetson is often offline).
(function () {
  "use strict";
  var REFRESH_MS = 500;

  function fixed(value, digits) {
    return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
  }

  function escaped(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function field(root, name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function numbers(source) {
    var lines = ["fps " + fixed(source.fps, 1) + "   frames " + source.frames +
                 "   frame " + (source.frame === null ? "-" : source.frame) +
                 "   dropped " + (source.dropped === undefined ? "-" : source.dropped) +
                 "   non-finite " + source.non_finite_frames];
    var stages = source.stages_ms || {};
    var parts = [];
    for (var name in stages) {
      if (Object.prototype.hasOwnProperty.call(stages, name)) {
        parts.push(name + " " + fixed(stages[name], 1));
      }
    }
    lines.push("ms: " + (parts.length ? parts.join("  ") : "-"));
    return lines.join("\n");
  }

  function shares(source, classes) {
    var out = [];
    var values = source.class_shares || {};
    for (var i = 0; i < classes.length; i++) {
      var cls = classes[i];
      if (cls.ignored) { continue; }
      var share = values[cls.name];
      var percent = share === undefined || share === null ? 0 : share * 100;
      out.push('<div class="share" data-class="' + escaped(cls.name) + '"><span class="label">' +
               escaped(cls.name) + '</span><span class="track"><span class="bar" style="display:block;' +
               'width:' + percent.toFixed(1) + '%;background:' + escaped(cls.color) + '"></span></span>' +
               '<span class="value">' + percent.toFixed(1) + ' %</span></div>');
    }
    return out.join("");
  }

  function outputs(rows) {
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      out.push("<tr><td>" + escaped(r.sink) + "</td><td>" + escaped(r.source) + "</td><td>" +
               r.delivery +
               "</td><td>" + r.queue + (r.queue_size ? "/" + r.queue_size : "") + "</td><td>" +
               (r.max_queue === undefined ? "-" : r.max_queue) + "</td><td>" +
               (r.waits === undefined ? "-" : r.waits) + "</td><td>" +
               fixed(r.wait_total_ms, 1) + "</td><td>" + r.written + "</td></tr>");
    }
    return out.join("");
  }

  function show(stats) {
    var model = stats.model || {};
    field(document, "model").textContent = (model.bundle || "-") + " | " +
      (model.backend || "-") + " | " + (model.precision || "-");
    var sources = stats.sources || [];
    for (var i = 0; i < sources.length; i++) {
      var source = sources[i];
      var panel = document.getElementById("source-" + source.index);
      if (!panel) { continue; }
      var state = field(panel, "state");
      state.textContent = source.state === "reconnecting" ?
        "reconnecting (" + source.reconnects + " reconnects)" :
        (source.state || "-") + (source.reconnects ? " (" + source.reconnects + " reconnects)" : "");
      state.className = "state " + (source.state || "");
      field(panel, "numbers").textContent = numbers(source);
      field(panel, "shares").innerHTML = shares(source, stats.classes || []);
    }
    field(document, "outputs").innerHTML = outputs(stats.outputs || []);
    field(document, "updated").textContent = new Date(stats.time * 1000).toLocaleTimeString();
    document.body.setAttribute("data-stats-time", String(stats.time));
  }

  function refresh() {
    var request = new XMLHttpRequest();
    request.open("GET", "/stats.json");
    request.onload = function () {
      if (request.status === 200) { show(JSON.parse(request.responseText)); }
    };
    request.send();
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
}());
