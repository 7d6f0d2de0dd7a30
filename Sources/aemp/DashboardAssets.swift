/// The dashboard page: HTML, CSS and plain JavaScript (no libraries, no CDN, no build step), served
/// from the binary so the page works offline. The script opens `/ws` (passing on the page's
/// `?token=`), draws the network as SVG and fills the tables from each snapshot; every text from the
/// network goes in with `textContent`, never as markup.
enum DashboardAssets {
    /// `/`.
    static let html = Array(htmlText.utf8)
    /// `/dashboard.js`.
    static let script = Array(scriptText.utf8)
    /// `/dashboard.css`.
    static let style = Array(styleText.utf8)

    /// The bytes of all three (the page weight).
    static var totalBytes: Int { html.count + script.count + style.count }

    private static let htmlText = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aemp dashboard</title>
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
<header>
  <h1>aemp dashboard</h1>
  <span class="meta">node <b id="self">…</b></span>
  <span class="meta">database master <b id="master">…</b></span>
  <span class="meta" id="counts"></span>
  <span class="status" id="status">connecting…</span>
</header>
<main>
  <section>
    <h2>Network</h2>
    <svg id="graph" viewBox="0 0 900 520" role="img" aria-label="the nodes and their connections"></svg>
    <div class="legend">
      <span><i class="dot swift"></i>Swift node</span><span><i class="dot perl"></i>Perl node</span>
      <span><i class="dot other"></i>unknown</span><span><i class="dot global"></i>global node</span>
      <span><i class="dot down"></i>down</span><span>thick outline: this node</span>
      <span>rates: this node's own connections, both directions</span>
    </div>
  </section>
  <section>
    <h2>Events</h2>
    <ul id="events"></ul>
  </section>
  <section class="wide">
    <h2>Nodes</h2>
    <table>
      <thead><tr><th>Node</th><th>Software</th><th>State</th><th>Up since</th><th>Connected here</th><th>Ports</th><th>Queued (its own)</th><th>Queued here</th><th>Liveness probes / timeouts</th><th>Connections</th></tr></thead>
      <tbody id="nodes"></tbody>
    </table>
  </section>
  <section class="wide">
    <h2>Global database</h2>
    <div id="families"></div>
    <div id="dberror"></div>
    <div class="pager"><button type="button" id="prev">‹ previous</button><span id="pageinfo"></span><button type="button" id="next">next ›</button></div>
    <table>
      <thead><tr><th>Key</th><th>Value</th></tr></thead>
      <tbody id="entries"></tbody>
    </table>
  </section>
</main>
<script src="/dashboard.js"></script>
</body>
</html>
"""#

    private static let scriptText = #"""
// aemp dashboard: renders the snapshots the node pushes over its WebSocket. Plain JS, no libraries.
(function () {
  'use strict';
  var token = new URLSearchParams(location.search).get('token');
  var query = token ? '?token=' + encodeURIComponent(token) : '';
  var snapshot = null, receivedAt = 0, retries = 0, socket = null;
  var family = null, page = 0, shownVersion = -1;
  var SVG = 'http://www.w3.org/2000/svg';

  function $(id) { return document.getElementById(id); }
  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var key in attributes || {}) node.setAttribute(key, attributes[key]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attributes, text) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attributes || {}) node.setAttribute(key, attributes[key]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function bytes(n) {
    if (n === null || n === undefined) return '–';
    if (n < 1024) return Math.round(n) + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' kB';
    return (n / 1048576).toFixed(1) + ' MB';
  }
  function rate(n) { return n === null || n === undefined ? '' : (n < 10 ? n.toFixed(1) : Math.round(n)); }
  function ago(seconds) {
    if (!seconds) return '–';
    var d = Math.max(0, snapshot.time - seconds);
    if (d < 60) return Math.round(d) + ' s ago';
    if (d < 3600) return Math.round(d / 60) + ' min ago';
    if (d < 86400) return (d / 3600).toFixed(1) + ' h ago';
    return (d / 86400).toFixed(1) + ' days ago';
  }
  function clock(seconds) { return new Date(seconds * 1000).toLocaleTimeString(); }
  function stamp(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : ''; }
  function short(id) { return id.length > 22 ? id.slice(0, 21) + '…' : id; }
  function software(node) { return node.implementation === 'swift' ? 'Swift' : node.implementation === 'perl' ? 'Perl' : node.implementation; }

  function connect() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(scheme + '//' + location.host + '/ws' + query);
    socket.onopen = function () { retries = 0; };
    socket.onmessage = function (event) {
      snapshot = JSON.parse(event.data);
      receivedAt = Date.now();
      render();
    };
    socket.onclose = function () {
      socket = null;
      setTimeout(connect, Math.min(5000, 250 * Math.pow(2, retries++)));
    };
  }

  function showStatus() {
    var status = $('status');
    if (!socket || socket.readyState !== 1) {
      status.textContent = 'not connected: reconnecting…';
      status.className = 'status bad';
    } else if (!snapshot) {
      status.textContent = 'connected, waiting for data';
      status.className = 'status';
    } else {
      var age = (Date.now() - receivedAt) / 1000;
      status.textContent = 'live · last update ' + age.toFixed(1) + ' s ago';
      status.className = age > 3 ? 'status bad' : 'status ok';
    }
  }

  function render() {
    $('self').textContent = snapshot.selfNode;
    $('master').textContent = snapshot.master || 'none';
    var up = snapshot.nodes.filter(function (n) { return n.state === 'up'; }).length;
    $('counts').textContent = snapshot.nodes.length + ' nodes (' + up + ' up), ' + snapshot.links.length + ' connections' +
      (snapshot.surveyedAt ? ' · surveyed ' + ago(snapshot.surveyedAt) + ' in ' + snapshot.surveySeconds.toFixed(1) + ' s' : '');
    renderGraph();
    renderNodes();
    renderEvents();
    renderDatabase();
  }

  function layout(nodes, width, height) {
    // This node in the middle and the others on an ellipse around it; up to four nodes all on it.
    var positions = {}, others = nodes.filter(function (n) { return !n.isSelf; });
    var self = nodes.filter(function (n) { return n.isSelf; })[0];
    var cx = width / 2, cy = height / 2 - 10, rx = width / 2 - 120, ry = height / 2 - 80;
    var ring = others;
    if (self && others.length >= 4) positions[self.id] = { x: cx, y: cy };
    else if (self) ring = [self].concat(others);
    ring.forEach(function (n, i) {
      var angle = Math.PI + 2 * Math.PI * i / ring.length + (ring.length === 2 ? 0 : Math.PI / 2 / ring.length);
      positions[n.id] = { x: cx + rx * Math.cos(angle), y: cy + ry * Math.sin(angle) };
    });
    return positions;
  }

  function renderGraph() {
    var graph = $('graph'), width = 900, height = 520;
    clear(graph);
    var at = layout(snapshot.nodes, width, height);
    var byId = {};
    snapshot.nodes.forEach(function (n) { byId[n.id] = n; });
    var links = svg('g', { 'class': 'links' }), labels = svg('g', { 'class': 'labels' });
    snapshot.links.forEach(function (link) {
      var a = at[link.from], b = at[link.to];
      if (!a || !b) return;
      var g = svg('g', { 'class': 'link' + (link.own ? ' own' : ''), 'data-from': link.from, 'data-to': link.to });
      var busy = link.own && link.messagesPerSecond > 0;
      g.appendChild(svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, 'class': busy ? 'busy' : '' }));
      g.appendChild(svg('title', {}, link.from + ' ⟷ ' + link.to + (link.own ? '\nqueued here: ' + bytes(link.queuedBytes) : '\n(seen in the survey: no rates)')));
      links.appendChild(g);
      if (link.own) {
        var mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
        var label = svg('text', { x: mx, y: my - 4, 'class': 'rate', 'text-anchor': 'middle' });
        label.appendChild(svg('tspan', { x: mx, dy: 0 }, rate(link.messagesPerSecond) + ' msg/s'));
        label.appendChild(svg('tspan', { x: mx, dy: 13 }, bytes(link.bytesPerSecond) + '/s'));
        labels.appendChild(label);
      }
    });
    graph.appendChild(links);
    var nodes = svg('g', { 'class': 'nodes' });
    snapshot.nodes.forEach(function (n) {
      var p = at[n.id];
      var g = svg('g', {
        'class': 'node ' + n.implementation + ' ' + n.state + (n.isSelf ? ' self' : '') + (n.isGlobal ? ' global' : ''),
        'data-id': n.id, 'data-state': n.state, 'data-implementation': n.implementation,
        transform: 'translate(' + p.x + ',' + p.y + ')'
      });
      if (n.isGlobal) g.appendChild(svg('circle', { r: 31, 'class': 'ring' }));
      g.appendChild(svg('circle', { r: 25, 'class': 'body' }));
      g.appendChild(svg('text', { y: 5, 'text-anchor': 'middle', 'class': 'badge' }, n.implementation === 'swift' ? 'S' : n.implementation === 'perl' ? 'P' : '?'));
      g.appendChild(svg('text', { y: 46, 'text-anchor': 'middle', 'class': 'name' }, short(n.id)));
      var note = n.state === 'up' ? software(n) + (n.isGlobal ? ' · global' : '') + (n.isSelf ? ' · this node' : '') : n.state.toUpperCase();
      g.appendChild(svg('text', { y: 60, 'text-anchor': 'middle', 'class': 'note' }, note));
      g.appendChild(svg('title', {}, n.id + '\n' + software(n) + (n.provider ? ' (' + n.provider + ')' : '') + '\nstate: ' + n.state + (n.reason ? ': ' + n.reason : '')));
      nodes.appendChild(g);
    });
    graph.appendChild(nodes);
    graph.appendChild(labels);
  }

  function renderNodes() {
    var body = $('nodes');
    clear(body);
    var own = {};
    snapshot.links.forEach(function (l) { if (l.own) own[l.to] = l; });
    snapshot.nodes.forEach(function (n) {
      var row = el('tr', { 'class': n.state, 'data-id': n.id });
      var name = el('td', {}, n.id);
      if (n.isSelf) name.appendChild(el('span', { 'class': 'tag self' }, 'this node'));
      if (n.isGlobal) name.appendChild(el('span', { 'class': 'tag global' }, 'global'));
      row.appendChild(name);
      row.appendChild(el('td', { title: n.provider || '' }, software(n)));
      var state = el('td', { 'class': 'state' }, n.state);
      if (n.reason) state.appendChild(el('div', { 'class': 'reason' }, n.reason));
      row.appendChild(state);
      row.appendChild(el('td', { title: stamp(n.startedAt) }, n.startedAt ? ago(n.startedAt) : '–'));
      row.appendChild(el('td', { title: stamp(n.connectedSince) }, n.isSelf ? '' : (n.connectedSince ? ago(n.connectedSince) : '–')));
      row.appendChild(el('td', { 'class': 'number' }, n.ports === null || n.ports === undefined ? '–' : n.ports));
      row.appendChild(el('td', { 'class': 'number' }, bytes(n.queuedBytes)));
      row.appendChild(el('td', { 'class': 'number' }, own[n.id] ? bytes(own[n.id].queuedBytes) : '–'));
      row.appendChild(el('td', { 'class': 'number' }, n.livenessProbes === null || n.livenessProbes === undefined ? '–' : n.livenessProbes + ' / ' + n.livenessTimeouts));
      row.appendChild(el('td', {}, n.connections === 'secure' ? 'secure mode' : (n.connections || '–')));
      body.appendChild(row);
    });
  }

  function renderEvents() {
    var list = $('events');
    clear(list);
    var events = snapshot.events.slice().reverse();
    if (!events.length) list.appendChild(el('li', { 'class': 'empty' }, 'nothing yet'));
    events.forEach(function (e) {
      var item = el('li', { 'class': e.kind });
      item.appendChild(el('time', {}, clock(e.time)));
      item.appendChild(el('span', { 'class': 'kind' }, e.kind));
      item.appendChild(el('span', { 'class': 'text' }, e.text));
      list.appendChild(item);
    });
  }

  function renderDatabase() {
    var db = snapshot.database, list = $('families');
    $('dberror').textContent = db.error || '';
    clear(list);
    db.families.forEach(function (f) {
      var button = el('button', { type: 'button', 'class': f.name === family ? 'chosen' : '' }, f.name + ' (' + f.count + ')');
      button.onclick = function () { family = f.name; page = 0; shownVersion = -1; renderDatabase(); };
      list.appendChild(button);
    });
    if (family === null && db.families.length) {
      // The first of the network's own families, else a reserved one ('g, 'l).
      var own = db.families.filter(function (f) { return f.name.charAt(0) !== "'"; });
      family = (own.length ? own : db.families)[0].name;
    }
    if (family !== null && shownVersion !== db.version) { shownVersion = db.version; loadPage(); }
  }

  function loadPage() {
    var url = '/db.json' + (query ? query + '&' : '?') + 'family=' + encodeURIComponent(family) + '&page=' + page;
    fetch(url, { cache: 'no-store' }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      var body = $('entries');
      clear(body);
      if (!data) { $('pageinfo').textContent = family + ': not available'; return; }
      page = data.page;
      $('pageinfo').textContent = data.family + ': ' + data.count + ' keys, page ' + (data.page + 1) + ' of ' + data.pages;
      $('prev').disabled = data.page === 0;
      $('next').disabled = data.page + 1 >= data.pages;
      data.entries.forEach(function (entry) {
        var row = el('tr');
        row.appendChild(el('td', { 'class': 'key' }, entry.key));
        row.appendChild(el('td', { 'class': 'value' }, entry.value));
        body.appendChild(row);
      });
    }).catch(function () { $('pageinfo').textContent = 'could not load ' + family; });
  }

  $('prev').onclick = function () { if (page > 0) { page--; loadPage(); } };
  $('next').onclick = function () { page++; loadPage(); };
  setInterval(showStatus, 250);
  connect();
})();
"""#

    private static let styleText = #"""
:root { --swift: #f05138; --perl: #3b6fb6; --other: #8a8f98; --down: #c62828; --ink: #1d2330; --muted: #6b7280; --line: #d7dbe2; --paper: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--paper); }
header { display: flex; flex-wrap: wrap; gap: 6px 24px; align-items: baseline; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
header .meta { color: var(--muted); }
header .meta b { color: var(--ink); font-weight: 600; }
.status { margin-left: auto; padding: 2px 10px; border-radius: 10px; background: #eceff3; }
.status.ok { background: #e3f4e6; color: #1b5e20; }
.status.bad { background: #fde7e7; color: var(--down); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 1.2fr); gap: 16px; padding: 16px 20px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
section h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.wide { grid-column: 1 / -1; }
#graph { width: 100%; height: auto; display: block; }
.link line { stroke: #9aa3b2; stroke-width: 2; }
.link.own line { stroke: #59647a; stroke-width: 3; }
.link line.busy { stroke: #2e7d32; }
.rate { font-size: 11px; fill: #2e4a2f; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.node .body { fill: var(--other); stroke: #fff; stroke-width: 3; }
.node.swift .body { fill: var(--swift); }
.node.perl .body { fill: var(--perl); }
.node .ring { fill: none; stroke: #f2b705; stroke-width: 3; }
.node.self .body { stroke: var(--ink); stroke-width: 5; }
.node.down .body, .node.unreachable .body { fill: #fff; stroke: var(--down); stroke-width: 3; stroke-dasharray: 5 4; }
.node.down .badge, .node.unreachable .badge { fill: var(--down); }
.node .badge { fill: #fff; font-weight: 700; font-size: 16px; }
.node .name { font-size: 12px; font-weight: 600; fill: var(--ink); paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.node .note { font-size: 11px; fill: var(--muted); paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.node.down .note, .node.unreachable .note { fill: var(--down); font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; color: var(--muted); font-size: 12px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; vertical-align: -1px; }
.dot.swift { background: var(--swift); } .dot.perl { background: var(--perl); } .dot.other { background: var(--other); }
.dot.global { border: 2px solid #f2b705; background: none; } .dot.down { border: 2px dashed var(--down); background: none; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.down td.state, tr.unreachable td.state { color: var(--down); font-weight: 600; }
tr.up td.state { color: #1b5e20; }
.reason { font-weight: 400; font-size: 12px; color: var(--muted); }
.tag { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; font-size: 11px; background: #eceff3; }
.tag.self { background: var(--ink); color: #fff; } .tag.global { background: #fff4cc; }
#events { list-style: none; margin: 0; padding: 0; max-height: 520px; overflow: auto; font-size: 12px; }
#events li { display: grid; grid-template-columns: auto auto 1fr; gap: 6px; padding: 4px 0; border-bottom: 1px solid #eef0f3; }
#events time { color: var(--muted); font-variant-numeric: tabular-nums; }
#events .kind { align-self: start; padding: 0 6px; border-radius: 8px; background: #eceff3; }
#events .down .kind, #events .handshake .kind { background: #fde7e7; color: var(--down); }
#events .up .kind { background: #e3f4e6; color: #1b5e20; }
#events .port .kind { background: #fff4cc; }
#events .text { overflow-wrap: anywhere; }
#families button { margin: 0 6px 6px 0; padding: 3px 10px; border: 1px solid var(--line); border-radius: 12px; background: #fff; cursor: pointer; font: inherit; }
#families button.chosen { background: var(--ink); color: #fff; border-color: var(--ink); }
.pager { display: flex; gap: 8px; align-items: center; margin: 4px 0 8px; color: var(--muted); }
td.key, td.value { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
#dberror { color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
"""#
}
