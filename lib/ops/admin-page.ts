/**
 * The admin page's files, as strings, so the build needs no copy step and
 * the page works offline: no CDN, no framework, the chart is plain SVG.
 * The script polls `data.json` (next to the page) once a second and builds
 * the DOM with `textContent` only, so channel names are never parsed as HTML.
 * Nothing inline: the page runs under `default-src 'self'`.
 */

export const ADMIN_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>express-bayeux admin</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="admin.css">
<script type="module" src="admin.js"></script>
</head>
<body>
<header>
  <h1>express-bayeux</h1>
  <span id="status" class="status">connecting…</span>
</header>
<main>
  <section class="cards" aria-label="Now">
    <div class="card"><span class="label">Sessions</span><span class="value" id="sessions">–</span></div>
    <div class="card"><span class="label">Subscriptions</span><span class="value" id="subscriptions">–</span></div>
    <div class="card"><span class="label">Held connections</span><span class="value" id="held">–</span></div>
    <div class="card"><span class="label">WebSockets</span><span class="value" id="websockets">–</span></div>
    <div class="card"><span class="label">Messages in /s</span><span class="value in" id="rate-in">–</span></div>
    <div class="card"><span class="label">Messages out /s</span><span class="value out" id="rate-out">–</span></div>
  </section>
  <section class="panel">
    <h2>Messages per second <span class="legend"><span class="in">■ in</span> <span class="out">■ out</span></span></h2>
    <div class="chart">
      <div class="y-axis" id="y-axis" title="messages per second on this node">
        <span class="y4" id="y-4">–</span><span class="y3" id="y-3"></span><span class="y2" id="y-2"></span><span class="y1" id="y-1"></span><span class="y0" id="y-0">0</span>
      </div>
      <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="Messages in and out per second">
        <g class="grid"><line x1="0" y1="6" x2="600" y2="6"/><line x1="0" y1="43.5" x2="600" y2="43.5"/><line x1="0" y1="81" x2="600" y2="81"/><line x1="0" y1="118.5" x2="600" y2="118.5"/><line class="base" x1="0" y1="156" x2="600" y2="156"/></g>
        <polyline id="line-in" class="in" points=""/>
        <polyline id="line-out" class="out" points=""/>
      </svg>
    </div>
    <div class="axis x-axis"><span id="chart-span">–</span><span id="chart-mid"></span><span id="chart-now">now</span></div>
    <p class="note">Vertical: messages per second on this node (<span id="chart-max">max –</span>). Horizontal: time, one sample a second, newest on the right.</p>
  </section>
  <div class="columns">
    <section class="panel">
      <h2>Busiest channels</h2>
      <table id="channels"><thead><tr><th>Channel</th><th>Publishes/s</th><th>Publishes</th><th title="sessions subscribed to the channel or to a wildcard that matches it">Receivers</th></tr></thead><tbody></tbody></table>
      <p class="note">Receivers: the sessions a publish to the channel reaches, subscribed to it or to a wildcard that matches it (<code>/a/b</code> counts <code>/a/b</code>, <code>/a/*</code>, <code>/a/**</code> and <code>/**</code>, each session once). A wildcard row (<code>/a/**</code>) counts the sessions subscribed to that pattern. Refreshed every few seconds.</p>
    </section>
    <section class="panel">
      <h2>Recent disconnects</h2>
      <table id="disconnects"><thead><tr><th>When</th><th>Session</th><th>Reason</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
  <section class="panel">
    <h2>Nodes</h2>
    <table id="nodes"><thead><tr><th>Host</th><th>PID</th><th>Engine</th><th>Sessions held</th><th>Uptime</th><th>Memory</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const ADMIN_CSS = `:root { color-scheme: light dark; --in: #2b7bd6; --out: #d9822b; --line: #8884; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; align-items: baseline; gap: 1em; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2em; margin: 0; }
h2 { font-size: 1em; margin: 0 0 .5em; }
main { padding: 1em 1.2em; display: grid; gap: 1em; }
.status { font-size: .9em; opacity: .8; }
.status.down { color: #c33; opacity: 1; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: .8em; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; display: flex; flex-direction: column; }
.label { font-size: .85em; opacity: .75; }
.value { font-size: 1.8em; font-variant-numeric: tabular-nums; }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: .8em; min-width: 0; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1em; }
.chart { position: relative; height: 160px; padding-left: 4.5em; }
#chart { width: 100%; height: 160px; display: block; }
.y-axis { position: absolute; left: 0; top: 0; bottom: 0; width: 4em; font-size: .8em; opacity: .75; font-variant-numeric: tabular-nums; }
.y-axis span { position: absolute; right: 0; transform: translateY(-50%); white-space: nowrap; }
.y-axis .y4 { top: 3.75%; } .y-axis .y3 { top: 27.19%; } .y-axis .y2 { top: 50.63%; } .y-axis .y1 { top: 74.06%; } .y-axis .y0 { top: 97.5%; }
.x-axis { margin-left: 4.5em; }
#chart .grid line.base { stroke: currentColor; opacity: .4; }
.note { font-size: .8em; opacity: .7; margin: .4em 0 0; }
#chart polyline { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
#chart .grid line { stroke: var(--line); vector-effect: non-scaling-stroke; }
polyline.in { stroke: var(--in); } polyline.out { stroke: var(--out); }
.in { color: var(--in); } .out { color: var(--out); }
.legend { font-weight: normal; font-size: .9em; margin-left: 1em; }
.axis { display: flex; justify-content: space-between; font-size: .85em; opacity: .75; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); }
td:first-child { word-break: break-all; }
tbody:empty::after { content: "none yet"; display: block; padding: .25em .5em; opacity: .6; }
`;

export const ADMIN_JS = `const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();

function text(id, value) {
  const el = $(id);
  const s = value === undefined || value === null ? '–' : typeof value === 'number' ? fmt.format(value) : String(value);
  if (el.textContent !== s) el.textContent = s;
}

function rows(tableId, list, cells) {
  const body = document.querySelector('#' + tableId + ' tbody');
  const frag = document.createDocumentFragment();
  for (const item of list) {
    const tr = document.createElement('tr');
    for (const value of cells(item)) {
      const td = document.createElement('td');
      td.textContent = value === null || value === undefined ? '–' : typeof value === 'number' ? fmt.format(value) : String(value);
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
}

function duration(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

/** The top of the scale: four equal steps of 1, 2 or 5 times a power of ten (at least 1 message/s each). */
function scaleTop(max) {
  const rough = Math.max(1, max / 4);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  return step * 4;
}

function chart(series) {
  let max = 0;
  for (const p of series) max = Math.max(max, p.in, p.out);
  const top = scaleTop(max);
  const n = series.length;
  const t0 = n > 0 ? series[0].t : 0;
  const span = n > 1 ? series[n - 1].t - t0 : 0;
  // By time, not by index: a gap (the engine did not answer) shows as one.
  const x = (p) => (span <= 0 ? 600 : ((p.t - t0) * 600) / span).toFixed(1);
  const y = (v) => (156 - (v / top) * 150).toFixed(1);
  $('line-in').setAttribute('points', series.map((p) => x(p) + ',' + y(p.in)).join(' '));
  $('line-out').setAttribute('points', series.map((p) => x(p) + ',' + y(p.out)).join(' '));
  for (let i = 0; i <= 4; i++) text('y-' + i, i === 0 ? '0' : fmt.format((top * i) / 4) + '/s');
  text('chart-max', 'highest ' + fmt.format(max) + '/s');
  const seconds = Math.round(span / 1000);
  text('chart-span', n > 1 ? '−' + duration(seconds) : 'collecting…');
  text('chart-mid', n > 1 && seconds >= 2 ? '−' + duration(Math.round(seconds / 2)) : '');
}

function render(d) {
  const s = d.stats || {};
  text('sessions', s.sessions);
  text('subscriptions', s.subscriptions);
  text('held', s.heldConnections);
  text('websockets', s.sockets);
  const last = d.series[d.series.length - 1];
  text('rate-in', last && last.in);
  text('rate-out', last && last.out);
  chart(d.series);
  rows('channels', d.channels, (c) => [c.channel, c.rate, c.publishes, c.subscribers]);
  rows('disconnects', d.disconnects, (x) => [new Date(x.at).toLocaleTimeString(), x.client + '…', x.reason]);
  rows('nodes', d.nodes, (x) => [x.hostname + (x.self ? ' (this page)' : ''), String(x.pid), x.engine, x.sessions === undefined ? '–' : String(x.sessions), duration(x.uptime), (x.rss / 1048576).toFixed(0) + ' MB']);
  const status = $('status');
  status.textContent = d.engineUp ? 'live · ' + new Date(d.now).toLocaleTimeString() : 'engine unreachable';
  status.classList.toggle('down', !d.engineUp);
}

async function poll() {
  try {
    const res = await fetch('data.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
  } catch (err) {
    const status = $('status');
    status.textContent = 'disconnected: ' + err.message;
    status.classList.add('down');
  }
  setTimeout(poll, 1000);
}

poll();
`;
