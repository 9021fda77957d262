/* tcc-otel dev web page: a run list and a run waterfall, read from /api/runs.
 * Plain ES2017, no dependencies. Data is only ever put into the page as text
 * (textContent / attributes), never parsed as HTML. */
(function () {
  "use strict";

  var app = document.getElementById("app");

  // --- DOM helpers ------------------------------------------------------------------------------

  /** Build an element: el("td", {class: "num", "data-testid": "x"}, "text", childNode, ...). */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "onclick") node.addEventListener("click", value);
        else if (name === "style") Object.assign(node.style, value);
        else node.setAttribute(name, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }

  function show(node) {
    while (app.firstChild) app.removeChild(app.firstChild);
    app.appendChild(node);
  }

  // --- formatting -------------------------------------------------------------------------------

  function fmtTime(ns) {
    if (ns === null || ns === undefined) return "—";
    return new Date(ns / 1e6).toLocaleString();
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 1000) return ms.toFixed(0) + " ms";
    return (ms / 1000).toFixed(2) + " s";
  }

  function fmtInt(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString();
  }

  function fmtCost(c) {
    if (c === null || c === undefined) return "—";
    return "$" + Number(c).toFixed(c < 0.01 ? 6 : 4);
  }

  /** A stored value as readable text: JSON strings and objects pretty-printed. */
  function pretty(value) {
    if (typeof value === "string") {
      var t = value.trim();
      if ((t[0] === "{" && t[t.length - 1] === "}") || (t[0] === "[" && t[t.length - 1] === "]")) {
        try { return JSON.stringify(JSON.parse(t), null, 2); } catch (e) { return value; }
      }
      return value;
    }
    return JSON.stringify(value, null, 2);
  }

  function badge(status) {
    return el("span", { class: "badge " + status, "data-testid": "run-status" }, status);
  }

  // --- API --------------------------------------------------------------------------------------

  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body && body.error ? body.error : "HTTP " + response.status);
        return body;
      });
    });
  }

  function failure(error) {
    show(el("p", { class: "failure", "data-testid": "error" }, "Could not load: " + error.message));
  }

  // --- routing ----------------------------------------------------------------------------------

  function parseHash() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var q = hash.indexOf("?");
    var path = q < 0 ? hash : hash.slice(0, q);
    var params = new URLSearchParams(q < 0 ? "" : hash.slice(q + 1));
    return { path: path, params: params };
  }

  function route() {
    var where = parseHash();
    var match = /^\/runs\/(.+)$/.exec(where.path);
    if (match) renderRun(decodeURIComponent(match[1]));
    else renderList(where.params);
  }

  // --- run list ---------------------------------------------------------------------------------

  var FILTERS = ["status", "session", "agent"];

  function renderList(params) {
    var query = new URLSearchParams();
    FILTERS.forEach(function (name) {
      var value = params.get(name);
      if (value) query.set(name, value);
    });
    getJson("/api/runs?" + query.toString()).then(function (body) {
      show(el("section", null,
        el("h1", null, "Runs"),
        filterForm(params),
        body.runs.length ? runTable(body.runs)
          : el("p", { class: "empty", "data-testid": "no-runs" },
            "No runs yet. Point your agent at this address with TCC_BASE_URL=" + location.origin)));
    }, failure);
  }

  function filterForm(params) {
    var status = el("select", { name: "status", "data-testid": "filter-status" },
      ["", "ok", "error", "incomplete"].map(function (value) {
        return el("option", { value: value, selected: params.get("status") === value && value !== "" },
          value || "any");
      }));
    var session = el("input", { name: "session", "data-testid": "filter-session",
      value: params.get("session") || "", placeholder: "session id" });
    var agent = el("input", { name: "agent", "data-testid": "filter-agent",
      value: params.get("agent") || "", placeholder: "agent name" });
    var form = el("form", { class: "filters", "data-testid": "filters" },
      el("label", null, "Status", status),
      el("label", null, "Session", session),
      el("label", null, "Agent", agent),
      el("button", { type: "submit", "data-testid": "filter-apply" }, "Filter"),
      el("button", { type: "button", "data-testid": "refresh", onclick: route }, "Refresh"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var next = new URLSearchParams();
      if (status.value) next.set("status", status.value);
      if (session.value.trim()) next.set("session", session.value.trim());
      if (agent.value.trim()) next.set("agent", agent.value.trim());
      var hash = "#/" + (next.toString() ? "?" + next.toString() : "");
      if (location.hash === hash) route(); else location.hash = hash;
    });
    return form;
  }

  function runTable(runs) {
    return el("table", { class: "runs", "data-testid": "run-list" },
      el("thead", null, el("tr", null,
        el("th", null, "Time"), el("th", null, "Run"), el("th", null, "Status"),
        el("th", { class: "num" }, "Duration"), el("th", null, "Model(s)"),
        el("th", { class: "num" }, "Tokens"), el("th", { class: "num" }, "Cost"),
        el("th", null, "Session"))),
      el("tbody", null, runs.map(function (run) {
        var href = "#/runs/" + encodeURIComponent(run.run_id);
        return el("tr", { "data-testid": "run-row", "data-run-id": run.run_id,
          onclick: function () { location.hash = href; } },
          el("td", { "data-testid": "run-time" }, fmtTime(run.start_ns)),
          el("td", null, el("a", { href: href, "data-testid": "run-link" }, run.name || run.run_id)),
          el("td", null, badge(run.status)),
          el("td", { class: "num", "data-testid": "run-duration" }, fmtMs(run.duration_ms)),
          el("td", { "data-testid": "run-models" }, (run.models || []).join(", ") || "—"),
          el("td", { class: "num", "data-testid": "run-tokens" }, fmtInt(run.total_tokens)),
          el("td", { class: "num", "data-testid": "run-cost" }, fmtCost(run.total_cost)),
          el("td", { "data-testid": "run-session" }, run.session || "—"));
      })));
  }

  // --- run page ---------------------------------------------------------------------------------

  function renderRun(runId) {
    getJson("/api/runs/" + encodeURIComponent(runId)).then(function (body) {
      var run = body.run;
      var rows = treeOrder(body.spans);
      var total = Math.max.apply(null, [run.duration_ms || 0].concat(rows.map(function (r) {
        return (r.span.offset_ms || 0) + (r.span.duration_ms || 0);
      }))) || 1;
      show(el("section", { "data-testid": "run-page", "data-run-id": run.run_id },
        el("p", null, el("a", { href: "#/", "data-testid": "back" }, "← all runs")),
        el("h1", null, run.name || run.run_id, " ", badge(run.status)),
        el("div", { class: "summary", "data-testid": "run-summary" },
          field("Run", run.run_id), field("Started", fmtTime(run.start_ns)),
          field("Duration", fmtMs(run.duration_ms)),
          field("Model(s)", (run.models || []).join(", ") || "—"),
          field("Tokens", fmtInt(run.total_tokens) + " (" + fmtInt(run.input_tokens) + " in, " +
            fmtInt(run.output_tokens) + " out)"),
          field("Cost", fmtCost(run.total_cost)), field("Session", run.session || "—"),
          field("Agent", run.agent || "—"), field("Spans", run.span_count),
          field("Errors", run.error_count)),
        el("div", { class: "waterfall", "data-testid": "waterfall" },
          el("div", { class: "wf-head" }, el("span", null, "Span"),
            el("span", null, "0 — " + fmtMs(total)), el("span", { class: "wf-dur" }, "Duration")),
          rows.map(function (r) { return spanRow(r.span, r.depth, total); }))));
    }, failure);
  }

  function field(label, value) {
    return el("span", null, label + ": ", el("b", null, value));
  }

  /** Spans depth-first, children by start time; a span whose parent is absent is a root. */
  function treeOrder(spans) {
    var byId = {};
    spans.forEach(function (s) { byId[s.span_id] = s; });
    var children = {};
    var roots = [];
    spans.forEach(function (s) {
      if (s.parent_span_id && byId[s.parent_span_id] && s.parent_span_id !== s.span_id) {
        (children[s.parent_span_id] = children[s.parent_span_id] || []).push(s);
      } else {
        roots.push(s);
      }
    });
    var byStart = function (a, b) { return (a.offset_ms || 0) - (b.offset_ms || 0); };
    var out = [];
    var seen = {};
    function walk(span, depth) {
      if (seen[span.span_id]) return;
      seen[span.span_id] = true;
      out.push({ span: span, depth: depth });
      (children[span.span_id] || []).sort(byStart).forEach(function (c) { walk(c, depth + 1); });
    }
    roots.sort(byStart).forEach(function (r) { walk(r, 0); });
    return out;
  }

  function spanType(span) {
    return (span.attributes && span.attributes["tcc.type"]) || "";
  }

  function spanRow(span, depth, total) {
    var type = spanType(span);
    var isError = span.status === "ERROR";
    var left = Math.min(100, Math.max(0, (span.offset_ms || 0) / total * 100));
    var width = Math.min(100 - left, Math.max(0, (span.duration_ms || 0) / total * 100));
    var details = null;
    var row = el("div", {
      class: "wf-row" + (isError ? " error" : ""), "data-testid": "span-row",
      "data-span-id": span.span_id, "data-depth": depth, "data-status": span.status,
      "data-type": type, role: "button", tabindex: 0, "aria-expanded": "false",
    },
      el("div", { class: "wf-name", style: { paddingLeft: (depth * 18) + "px" } },
        type ? el("span", { class: "wf-kind" }, type.replace("_", " ")) : null,
        el("span", { "data-testid": "span-name", title: span.name }, span.name)),
      el("div", { class: "wf-track" },
        el("div", { class: "wf-bar " + type + (isError ? " error" : ""), "data-testid": "span-bar",
          style: { left: left + "%", width: width + "%" },
          title: fmtMs(span.offset_ms) + " + " + fmtMs(span.duration_ms) })),
      el("div", { class: "wf-dur" }, fmtMs(span.duration_ms)));
    var wrapper = el("div", { "data-testid": "span", "data-span-id": span.span_id }, row);
    function toggle() {
      if (details) {
        wrapper.removeChild(details);
        details = null;
        row.classList.remove("selected");
        row.setAttribute("aria-expanded", "false");
      } else {
        details = spanDetails(span, type);
        wrapper.appendChild(details);
        row.classList.add("selected");
        row.setAttribute("aria-expanded", "true");
      }
    }
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
    });
    return wrapper;
  }

  function spanDetails(span, type) {
    var a = span.attributes || {};
    var items = [];
    function add(label, testid, value, asBlock) {
      if (value === null || value === undefined || value === "") return;
      items.push(el("dt", null, label));
      items.push(el("dd", { "data-testid": testid },
        asBlock ? el("pre", null, pretty(value)) : String(value)));
    }
    if (span.status === "ERROR") {
      items.push(el("dt", null, "Error"));
      items.push(el("dd", { "data-testid": "detail-status-message", class: "error-text" },
        span.status_message || "(no message)"));
    }
    if (type === "step") {
      var used = a["tcc.step.model_used"];
      var requested = a["tcc.step.model_requested"];
      var model = used || requested;
      if (used && requested && used !== requested) model = used + " (requested " + requested + ")";
      add("Model", "detail-model", model);
      add("Prompt", "detail-prompt", a["tcc.step.prompt"], true);
      add("Response", "detail-response", a["tcc.step.response"], true);
      add("Tokens", "detail-tokens", tokenText(a));
      var real = a["tcc.step.real_total_cost"];
      var estimated = a["tcc.step.estimated_cost"];
      if (real !== undefined) add("Cost", "detail-cost", fmtCost(real));
      else if (estimated !== undefined) add("Cost", "detail-cost", fmtCost(estimated) + " (estimated)");
      add("Finish reason", "detail-finish-reason", a["tcc.step.finish_reason"]);
      add("Tool definitions", "detail-tool-definitions", a["tcc.step.tool_definitions"], true);
    } else if (type === "tool_call") {
      add("Tool", "detail-tool-name", a["tcc.tool_call.name"]);
      add("Arguments", "detail-args", a["tcc.tool_call.args"], true);
      add("Result", "detail-result", a["tcc.tool_call.result"], true);
    } else if (type === "run") {
      add("User prompt", "detail-prompt", a["tcc.run.user_prompt"], true);
      add("Response", "detail-response", a["tcc.run.response"], true);
    }
    add("Span", "detail-span", span.name + " · " + span.kind + " · " + (span.scope_name || ""));
    return el("div", { class: "details", "data-testid": "span-details" },
      el("dl", null, items),
      el("details", null, el("summary", null, "All attributes"),
        el("pre", { "data-testid": "detail-attributes" }, JSON.stringify(a, null, 2))));
  }

  function tokenText(a) {
    var uncached = a["tcc.step.prompt_uncached_tokens"];
    var cached = a["tcc.step.prompt_cached_tokens"];
    var completion = a["tcc.step.completion_tokens"];
    if (uncached === undefined && cached === undefined && completion === undefined) return null;
    var input = (uncached || 0) + (cached || 0);
    var parts = [fmtInt(input) + " in"];
    if (cached) parts[0] += " (" + fmtInt(cached) + " cached)";
    parts.push(fmtInt(completion || 0) + " out");
    return parts.join(", ") + " = " + fmtInt(input + (completion || 0));
  }

  window.addEventListener("hashchange", route);
  route();
})();
