// shhim dashboard: polls shhimd's /api/v1/dashboard (the protobuf JSON of
// shhim.v1.Dashboard, with the router's ServiceList and the newest audit
// records) about once a second and draws it. Read-only; no
// libraries, nothing fetched from anywhere but this agent. Every value
// from the agent reaches the page through textContent, never as HTML.
'use strict';

(() => {
  const REFRESH_MS = 1000;
  const WINDOW_SECONDS = 900;   // the agent keeps 15 minutes
  const MAX_EVENTS = 200;
  const STALE_AFTER_MS = 5000;
  const COLORS = ['#1f5fbf', '#c62828', '#0b6e4f', '#b7791f', '#6a3fb5', '#00838f', '#ad1457'];

  const model = {
    eventsAfter: 0,        // newest feed seq drawn
    seriesAfter: 0,        // newest history second merged
    series: new Map(),     // backend key -> {meta, points: [{t, req, err, resp, p50, p99}]}
    events: [],            // newest first
    lastOk: 0,
    agentStart: null,      // detects an agent restart (seq numbers start again)
  };

  // ---- small helpers -------------------------------------------------

  // Protobuf JSON writes 64-bit integers as strings.
  const num = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('data-')) node.setAttribute(key, String(value));
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replaceChildren(id, ...nodes) {
    document.getElementById(id).replaceChildren(...nodes);
  }

  function formatDuration(seconds) {
    if (!(seconds > 0)) return '-';
    if (seconds < 0.001) return `${(seconds * 1e3).toFixed(3)} ms`;
    if (seconds < 10) return `${(seconds * 1e3).toFixed(1)} ms`;
    return `${seconds.toFixed(1)} s`;
  }
  const formatRate = (perSecond) => `${perSecond.toFixed(1)}/s`;
  function formatBytes(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return `${value.toFixed(1)} ${units[unit]}`;
  }
  function formatUptime(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return `${d}d ${h}h ${m}m`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s % 60}s`;
    return `${s % 60}s`;
  }
  const timeOf = (unixNs) => (num(unixNs) > 0 ? new Date(num(unixNs) / 1e6).toLocaleTimeString() : '-');
  function endpointText(endpoint) {
    const address = endpoint.address || '';
    const port = num(endpoint.port);
    if (!port) return address;
    return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }
  const backendKey = (endpoint, protocol) => `${endpointText(endpoint)}/${protocol}`;
  const classText = (name) => name || 'unclassified';

  // ---- canvas line chart ------------------------------------------------

  // series: [{name, color, points: [[unixSeconds, value|null], ...]}];
  // null values break the line (no sample in that second).
  function drawChart(canvas, series, { tMin, tMax, format }) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 140;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = { left: 62, right: 8, top: 18, bottom: 18 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    let yMax = 0;
    let drawn = 0;
    for (const s of series) for (const [, v] of s.points) if (v !== null && v > yMax) yMax = v;
    yMax = yMax > 0 ? niceCeiling(yMax * 1.1) : 1;
    const x = (t) => pad.left + ((t - tMin) / Math.max(1, tMax - tMin)) * plotW;
    const y = (v) => pad.top + plotH - (v / yMax) * plotH;

    ctx.font = '11px system-ui, sans-serif';
    ctx.strokeStyle = '#d9dee4';
    ctx.fillStyle = '#5f6b78';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const fraction of [0, 0.5, 1]) {
      const v = yMax * fraction;
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(y(v)) + 0.5);
      ctx.lineTo(pad.left + plotW, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(format(v), pad.left - 4, y(v));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const minutesAgo of [15, 10, 5, 0]) {
      const t = tMax - minutesAgo * 60;
      if (t < tMin) continue;
      ctx.fillText(minutesAgo ? `-${minutesAgo}m` : 'now', Math.min(x(t), pad.left + plotW - 10), pad.top + plotH + 3);
    }

    let legendX = pad.left;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let open = false;
      for (const [t, v] of s.points) {
        if (v === null || t < tMin) { open = false; continue; }
        if (open) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
        open = true;
        drawn++;
      }
      ctx.stroke();
      ctx.fillStyle = s.color;
      ctx.fillText(s.name, legendX, 12);
      legendX += ctx.measureText(s.name).width + 14;
    }
    canvas.dataset.points = String(drawn);
  }

  function niceCeiling(value) {
    const magnitude = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
    return 10 * magnitude;
  }

  // ---- history merge ------------------------------------------------------

  function mergeHistory(history, nowSeconds) {
    for (const s of history.backends || []) {
      const key = backendKey(s.endpoint || {}, s.protocol);
      let entry = model.series.get(key);
      if (!entry) {
        entry = { points: [] };
        model.series.set(key, entry);
      }
      entry.meta = { endpoint: s.endpoint || {}, protocol: s.protocol, service: s.service, priorityClass: s.priority_class };
      const start = num(s.start_unix_seconds);
      const last = entry.points.length ? entry.points[entry.points.length - 1].t : -Infinity;
      const req = s.requests_per_second || [];
      for (let i = 0; i < req.length; i++) {
        const t = start + i;
        if (t <= last) continue;
        model.seriesAfter = Math.max(model.seriesAfter, t);
        entry.points.push({
          t,
          req: num(req[i]),
          err: num((s.errors_per_second || [])[i]),
          resp: num((s.responses || [])[i]),
          p50: num((s.p50_seconds || [])[i]),
          p99: num((s.p99_seconds || [])[i]),
        });
      }
    }
    const horizon = nowSeconds - WINDOW_SECONDS;
    for (const [key, entry] of model.series) {
      entry.points = entry.points.filter((p) => p.t > horizon);
      if (!entry.points.length) model.series.delete(key);
    }
  }

  // ---- renderers ------------------------------------------------------------

  function renderHeader(d) {
    const status = d.status || {};
    const parts = [`shhimd ${status.version || '?'}`, `build ${status.build_id || '?'}`,
      `up ${formatUptime(num(status.uptime_seconds))}`];
    parts.push(status.policy_file ? `policy ${status.policy_file}` : 'no policy');
    document.getElementById('agent').textContent = parts.join(' · ');
  }

  function tile(label, value, bad, field) {
    return el('div', { class: bad ? 'tile bad' : 'tile', 'data-field': field },
      el('div', { class: 'value' }, value), el('div', { class: 'label' }, label));
  }

  function renderSummary(d) {
    const status = d.status || {};
    const maps = status.maps || [];
    const flows = maps.find((m) => m.name === 'shhim_flows') || {};
    const backends = (d.services || []).reduce((n, s) => n + (s.backends || []).length, 0);
    const requestRate = (d.classes || []).reduce((r, c) => r + num(c.requests_per_second), 0);
    const errorRate = (d.classes || []).reduce((r, c) => r + num(c.errors_per_second), 0);
    const fill = num(flows.max_entries) ? `${((100 * num(flows.entries)) / num(flows.max_entries)).toFixed(1)}%` : '-';
    replaceChildren('summary',
      tile('backends', backends, false, 'backends'),
      tile('requests', formatRate(requestRate), false, 'request-rate'),
      tile('errors', formatRate(errorRate), errorRate > 0, 'error-rate'),
      tile(`flows (${fill} of table)`, num(flows.entries), false, 'flows'),
      tile('events received', num(status.events_received), false, 'events-received'),
      tile('events lost', num(status.events_lost), num(status.events_lost) > 0, 'events-lost'),
      tile('parse errors', num(status.parse_errors), false, 'parse-errors'));
  }

  function errorsByKind(b) {
    const http5xx = num((b.http || {}).status_5xx);
    const mllp = b.mllp || {};
    const nacks = num(mllp.ae) + num(mllp.ar) + num(mllp.ce) + num(mllp.cr);
    return [['refused', num(b.refused)], ['syn timeout', num(b.syn_timeouts)], ['reset', num(b.resets)],
      ['icmp', num(b.icmp_errors)], ['5xx', http5xx], ['nack', nacks]].filter(([, n]) => n > 0);
  }

  // "3m 12s" since a Unix-ns time, as of the snapshot's own clock.
  const ageText = (sinceNs, nowNs) => (num(sinceNs) > 0 && num(nowNs) >= num(sinceNs)
    ? formatUptime((num(nowNs) - num(sinceNs)) / 1e9) : '-');

  // The state as the router shows it ("" for a backend no service routes),
  // with what holds it there.
  function stateBadge(view) {
    const routing = view.routing || {};
    let text = view.state || 'not routed';
    if (routing.held) text += ' (held)';
    if (view.state === 'probing') text += ` ${num(routing.probe_successes)} ok`;
    return el('span', { class: 'state', 'data-state': view.state || '' }, text);
  }

  function whyText(view, nowNs) {
    const routing = view.routing;
    if (!routing) return view.state_reason || '';
    const parts = [view.state_reason || '-'];
    if (routing.drained && num(routing.drained_until_unix_ns) > 0)
      parts.push(`drained until ${timeOf(routing.drained_until_unix_ns)}`);
    if (routing.state === 'ejected' && num(routing.ejected_until_unix_ns) > num(nowNs))
      parts.push(`probes from ${timeOf(routing.ejected_until_unix_ns)}`);
    if (routing.drained && routing.state !== 'healthy') parts.push(`engine: ${routing.state}`);
    return parts.join('; ');
  }

  function backendRow(view, nowNs) {
    const b = view.backend || {};
    const routing = view.routing || {};
    const endpoint = b.endpoint || {};
    const recent = view.recent_failures || {};
    const recentTotal = Object.values(recent).reduce((n, c) => n + num(c), 0);
    const recentText = Object.entries(recent).sort().map(([kind, n]) => `${num(n)} ${kind}`).join(', ');
    const totals = errorsByKind(b).map(([kind, n]) => `${n} ${kind}`).join(', ') || '0';
    const response = b.response || {};
    return el('tr', {
      class: recentTotal > 0 ? 'failing' : '',
      'data-backend': backendKey(endpoint, b.protocol),
      'data-state': view.state || '',
      'data-pool': routing.pool || '',
      'data-since': num(routing.since_unix_ns),
      'data-actor': routing.actor || '',
      'data-requests': num(b.requests),
      'data-recent-failures': recentTotal,
      'data-recent-refused': num(recent.refused),
    },
    el('td', {}, endpointText(endpoint)),
    el('td', {}, b.protocol || ''),
    el('td', {}, routing.pool || '-'),
    el('td', {}, stateBadge(view)),
    el('td', { class: 'num', 'data-field': 'since' }, view.routing ? ageText(routing.since_unix_ns, nowNs) : '-'),
    el('td', { class: 'reason', 'data-field': 'why' }, whyText(view, nowNs)),
    el('td', { 'data-field': 'kernel' }, routing.kernel_state
      ? `${routing.kernel_state}${num(routing.kernel_trips) ? ` (${num(routing.kernel_trips)} trips)` : ''}` : '-'),
    el('td', { class: 'num', 'data-field': 'request-rate' }, formatRate(num(b.request_rate_per_second))),
    el('td', { class: 'num', 'data-field': 'error-rate' }, formatRate(num(b.error_rate_per_second))),
    el('td', { class: 'num', 'data-field': 'p50' }, formatDuration(num(response.p50_seconds))),
    el('td', { class: 'num', 'data-field': 'p99' }, formatDuration(num(response.p99_seconds))),
    el('td', { class: 'num', 'data-field': 'requests' }, num(b.requests)),
    el('td', { class: 'num' }, totals),
    el('td', { class: 'failures', 'data-field': 'recent-failures' }, recentText),
    el('td', {}, timeOf(view.last_failure_unix_ns)));
  }

  function backendTable(views, nowNs) {
    const numeric = new Set(['since', 'req/s', 'err/s', 'p50', 'p99', 'requests']);
    const head = el('tr', {}, ...['backend', 'proto', 'pool', 'state', 'since', 'why', 'kernel', 'req/s', 'err/s', 'p50',
      'p99', 'requests', 'errors (total)', 'recent failures', 'last failure'].map((h) => el('th', { class: numeric.has(h) ? 'num' : '' }, h)));
    return el('table', {}, el('thead', {}, head), el('tbody', {}, ...views.map((v) => backendRow(v, nowNs))));
  }

  // The service's pool as the router has it: active pool, fail-open, an engineer's pin.
  function poolLine(routed, nowNs) {
    if (!routed) return null;
    const pool = routed.active_pool || 'primary';
    const parts = [el('span', { class: 'pool', 'data-pool': pool }, `pool ${pool}`)];
    if (routed.fail_open) parts.push(el('span', { class: 'pool', 'data-pool': 'fail-open' }, 'FAIL-OPEN: no routable backend'));
    if (routed.pinned)
      parts.push(el('span', { class: 'pool', 'data-pool': 'pinned' },
        `pinned by ${routed.pinned_by}${num(routed.pinned_until_unix_ns) ? ` until ${timeOf(routed.pinned_until_unix_ns)}` : ''}`));
    const why = routed.reason ? `${routed.reason}, ` : '';
    parts.push(el('span', { class: 'muted' }, ` ${routed.address} ${routed.protocol} · ${why}since ${ageText(routed.since_unix_ns, nowNs)}`));
    return el('div', { class: 'pool-line', 'data-field': 'pool' }, ...parts);
  }

  function renderServices(d) {
    document.getElementById('recent-window').textContent = num(d.recent_failure_window_seconds) || 60;
    const routedByName = new Map(((d.routing || {}).services || []).map((s) => [s.name, s]));
    const cards = (d.services || []).map((service) => {
      const backends = service.backends || [];
      const routed = routedByName.get(service.name);
      const title = service.name
        ? el('h3', {}, service.name, service.priority_class ? el('span', { class: 'class-tag' }, service.priority_class) : null)
        : el('h3', {}, 'Backends in no policy service');
      return el('div', {
        class: service.name ? 'service' : 'service unassigned',
        'data-service': service.name || '',
        'data-active-pool': routed ? routed.active_pool : '',
      },
      title,
      poolLine(routed, d.now_unix_ns),
      backends.length ? backendTable(backends, d.now_unix_ns) : el('div', { class: 'empty' }, 'no backend mapped to this service'));
    });
    replaceChildren('services', ...(cards.length ? cards : [el('div', { class: 'empty' }, 'no backends seen yet')]));
  }

  function renderCharts(nowSeconds) {
    const tMin = nowSeconds - WINDOW_SECONDS;
    const container = document.getElementById('charts');
    const keys = [...model.series.keys()].sort();
    // Keep existing canvases (no flicker); add and remove cards as backends come and go.
    const existing = new Map([...container.children].map((card) => [card.dataset.backend, card]));
    for (const [key, card] of existing) if (!model.series.has(key)) card.remove();
    keys.forEach((key) => {
      let card = existing.get(key);
      if (!card) {
        const meta = model.series.get(key).meta;
        card = el('div', { class: 'chart-card', 'data-backend': key },
          el('h3', {}, key, meta.service ? el('span', { class: 'class-tag' }, meta.service) : null),
          el('div', { class: 'chart-pair' },
            el('canvas', { class: 'chart', 'data-chart': 'latency' }),
            el('canvas', { class: 'chart', 'data-chart': 'errors' })));
      }
      container.append(card);  // (re)appending keeps the sorted order
      const points = model.series.get(key).points;
      drawChart(card.querySelector('[data-chart="latency"]'), [
        { name: 'p50', color: COLORS[0], points: points.map((p) => [p.t, p.resp > 0 ? p.p50 : null]) },
        { name: 'p99', color: COLORS[3], points: points.map((p) => [p.t, p.resp > 0 ? p.p99 : null]) },
      ], { tMin, tMax: nowSeconds, format: formatDuration });
      drawChart(card.querySelector('[data-chart="errors"]'), [
        { name: 'errors/s', color: COLORS[1], points: points.map((p) => [p.t, p.err]) },
        { name: 'error %', color: COLORS[4], points: points.map((p) => [p.t, p.req > 0 ? Math.min(100, (100 * p.err) / p.req) : null]) },
      ], { tMin, tMax: nowSeconds, format: (v) => v.toFixed(v < 10 ? 1 : 0) });
    });
    if (!keys.length && !container.querySelector('.empty'))
      container.append(el('div', { class: 'empty' }, 'history starts after the agent has run for two seconds'));
    else if (keys.length) container.querySelector('.empty')?.remove();
  }

  function renderClasses(d, nowSeconds) {
    const classes = d.classes || [];
    const rows = classes.map((c) => el('tr', { 'data-class': classText(c.priority_class) },
      el('td', {}, classText(c.priority_class)),
      el('td', { class: 'num' }, num(c.backends)),
      el('td', { class: 'num' }, formatRate(num(c.requests_per_second))),
      el('td', { class: 'num' }, formatRate(num(c.errors_per_second)))));
    replaceChildren('classes', classes.length
      ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'class'), el('th', { class: 'num' }, 'backends'),
        el('th', { class: 'num' }, 'req/s'), el('th', { class: 'num' }, 'err/s'))), el('tbody', {}, ...rows))
      : el('div', { class: 'empty' }, 'no traffic yet'));

    // Requests per second per class over the window, summed from the backends' series.
    const byClass = new Map();
    for (const { meta, points } of model.series.values()) {
      const name = classText(meta.priorityClass);
      if (!byClass.has(name)) byClass.set(name, new Map());
      const sums = byClass.get(name);
      for (const p of points) sums.set(p.t, (sums.get(p.t) || 0) + p.req);
    }
    const series = [...byClass.entries()].sort().map(([name, sums], i) => ({
      name, color: COLORS[i % COLORS.length], points: [...sums.entries()].sort((a, b) => a[0] - b[0]),
    }));
    drawChart(document.getElementById('class-chart'), series,
      { tMin: nowSeconds - WINDOW_SECONDS, tMax: nowSeconds, format: (v) => `${v.toFixed(v < 10 ? 1 : 0)}/s` });
  }

  function renderFlows(d) {
    const list = d.top_flows || {};
    const flows = list.flows || [];
    const head = el('tr', {}, ...['client', 'server', 'proto', 'app', 'state', 'bytes', 'packets', 'requests',
      'last status', 'max response', 'rtt'].map((h, i) => el('th', { class: i >= 5 && i !== 8 ? 'num' : '' }, h)));
    const rows = flows.map((f) => {
      const bytes = num(f.bytes_to_server) + num(f.bytes_to_client);
      const status = f.last_mllp_ack || (num(f.last_status) ? String(num(f.last_status)) : '-');
      return el('tr', { 'data-flow': `${endpointText(f.client || {})}>${endpointText(f.server || {})}`, 'data-bytes': bytes },
        el('td', {}, endpointText(f.client || {})),
        el('td', {}, endpointText(f.server || {})),
        el('td', {}, f.protocol || ''),
        el('td', {}, f.app_protocol || '-'),
        el('td', {}, f.tcp_state || '-'),
        el('td', { class: 'num' }, formatBytes(bytes)),
        el('td', { class: 'num' }, num(f.packets_to_server) + num(f.packets_to_client)),
        el('td', { class: 'num' }, num(f.requests)),
        el('td', {}, status),
        el('td', { class: 'num' }, formatDuration(num(f.max_response_seconds))),
        el('td', { class: 'num' }, formatDuration(num(f.srtt_seconds))));
    });
    replaceChildren('flows', flows.length
      ? el('div', {}, el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)),
        el('div', { class: 'hint' }, `${flows.length} of ${num(list.total)} flows in the table`))
      : el('div', { class: 'empty' }, 'no flows in the table'));
  }

  function eventItem(e) {
    return el('li', { 'data-type': e.type, 'data-seq': num(e.seq) },
      el('span', { class: 'time' }, timeOf(e.time_unix_ns)),
      el('span', { class: 'type' }, e.type),
      el('span', {}, e.summary || ''),
      e.service ? el('span', { class: 'class-tag' }, e.service) : null);
  }

  // One audit record: when, what, which backend, from what to what, who and why.
  function rerouteItem(e) {
    const r = e.reroute;
    if (!r) return eventItem(e);
    const target = r.backend ? `${r.service} ${r.backend}` : `${r.service} (pool)`;
    return el('li', { 'data-type': 'reroute', 'data-action': r.action, 'data-service': r.service,
      'data-backend': r.backend || '', 'data-after': r.after || '', 'data-audit-seq': num(r.seq) },
    el('span', { class: 'time' }, timeOf(r.time_unix_ns)),
    el('span', { class: 'type action' }, r.action),
    el('span', {}, target),
    el('span', { class: 'transition' }, `${r.before || '-'} \u2192 ${r.after || '-'}`),
    el('span', { class: 'actor' }, r.actor),
    el('span', { class: 'reason' }, r.reason || ''));
  }

  function renderReroutes(d) {
    const reroutes = d.reroutes || [];
    replaceChildren('reroutes', reroutes.length
      ? el('ol', { class: 'events timeline' }, ...reroutes.slice().reverse().map(rerouteItem))
      : el('div', { class: 'empty' }, 'no routing changes recorded'));
  }

  function renderEvents(d) {
    const fresh = d.events || [];
    if (fresh.length) {
      model.events = fresh.slice().reverse().concat(model.events).slice(0, MAX_EVENTS);
      model.eventsAfter = Math.max(model.eventsAfter, ...fresh.map((e) => num(e.seq)));
    }
    const list = document.getElementById('events');
    if (!model.events.length) list.replaceChildren(el('li', { class: 'empty' }, 'no events yet'));
    else if (fresh.length || list.querySelector('.empty')) list.replaceChildren(...model.events.map(eventItem));
  }

  // ---- refresh loop --------------------------------------------------------

  function setStale(message) {
    const banner = document.getElementById('banner');
    banner.hidden = !message;
    banner.textContent = message || '';
  }

  async function refresh() {
    try {
      const query = `events_after_seq=${model.eventsAfter}&series_after_unix_seconds=${model.seriesAfter}`;
      const response = await fetch(`/api/v1/dashboard?${query}`, { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const d = await response.json();

      // A restarted agent numbers its feed from 1 again and has a fresh history.
      const start = Date.now() - num((d.status || {}).uptime_seconds) * 1000;
      if (model.agentStart !== null && Math.abs(start - model.agentStart) > 5000) {
        model.eventsAfter = 0;
        model.seriesAfter = 0;
        model.events = [];
        model.series.clear();
        model.agentStart = start;
        return;  // the next refresh asks for everything
      }
      model.agentStart = start;

      const nowSeconds = Math.floor(num(d.now_unix_ns) / 1e9);
      mergeHistory(d.history || {}, nowSeconds);
      renderHeader(d);
      renderSummary(d);
      renderServices(d);
      renderCharts(nowSeconds);
      renderClasses(d, nowSeconds);
      renderFlows(d);
      renderReroutes(d);
      renderEvents(d);
      model.lastOk = Date.now();
      setStale('');
      document.body.dataset.refreshed = String(model.lastOk);
    } catch (error) {
      // The agent may be restarting: keep the last picture, say how old it is.
      if (Date.now() - model.lastOk > STALE_AFTER_MS)
        setStale(`shhimd not answering (${error.message}); showing data from ${model.lastOk ? new Date(model.lastOk).toLocaleTimeString() : 'never'}`);
    } finally {
      const freshness = document.getElementById('freshness');
      const stale = !model.lastOk || Date.now() - model.lastOk > STALE_AFTER_MS;
      freshness.dataset.state = stale ? 'stale' : 'live';
      freshness.textContent = model.lastOk ? `updated ${new Date(model.lastOk).toLocaleTimeString()}` : 'no data yet';
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
