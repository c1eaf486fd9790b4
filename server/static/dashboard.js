// farz staff dashboard: live totals, targets and alerts over server-sent events, a 24 h chart, composition over time and
// device health.
// No external assets.
"use strict";
// Shared with the report page (common.js): $, params, token, api, esc, pct, clock, colour, openSites, shiftOptions.
let source = null;

const asked = {};  // the number of the newest request of each kind
async function newest(kind, path) {  // the answer, or null when a newer request of its kind went out meanwhile
  const n = (asked[kind] = (asked[kind] || 0) + 1);
  const body = await api(path);
  return n === asked[kind] ? body : null;
}


function showLogin() { $("login").hidden = false; $("main").hidden = true; }

function renderTotals(data) {
  const today = data.today, week = data.this_week;
  $("total-today").textContent = today.total_in;
  $("total-week").textContent = week.total_in;
  const classes = [...new Set([...Object.keys(today.counts.in || {}), ...Object.keys(today.counts.out || {})])].sort();
  const max = Math.max(1, ...classes.map((c) => today.counts.in[c] || 0));
  $("class-table").tBodies[0].innerHTML = classes.map((c) => {
    const n = today.counts.in[c] || 0, o = (today.counts.out || {})[c] || 0, share = today.shares[c] || 0;
    return `<tr data-class="${c}"><td>${c}</td><td class="count-in">${n}</td><td>${o}</td><td>${(share * 100).toFixed(1)} %</td>` +
      `<td style="width:40%"><div class="bar" style="width:${(100 * n) / max}%"></div></td></tr>`;
  }).join("") || '<tr><td colspan="5" class="muted">nothing counted today yet</td></tr>';
}

function renderDevices(devices) {
  $("device-table").tBodies[0].innerHTML = devices.map((d) => {
    const hb = d.heartbeat || {};
    const seen = d.last_seen ? siteClock(siteTz, d.last_seen, { date: false, seconds: true }) : "never";
    return `<tr><td>${d.id}</td><td class="${d.online ? "online" : "offline"}">${d.online ? "online" : "OFFLINE"}</td>` +
      `<td>${seen}</td><td>${hb.fps != null ? hb.fps.toFixed(1) : "–"}</td><td>${hb.outbox_depth != null ? hb.outbox_depth : "–"}</td></tr>`;
  }).join("") || '<tr><td colspan="5" class="muted">no devices on this site</td></tr>';
}

function drawChart(series) {
  const canvas = $("chart"), ctx = canvas.getContext("2d");
  const byHour = new Map();
  for (const p of series) if (p.direction === "in") byHour.set(p.start, (byHour.get(p.start) || 0) + p.count);
  const now = Date.now(), hours = [];
  for (let i = 23; i >= 0; i--) { const t = new Date(now - i * 3600e3); t.setMinutes(0, 0, 0); hours.push(t); }
  const values = hours.map((h) => { let n = 0; for (const [k, v] of byHour) if (Math.abs(new Date(k) - h) < 1800e3) n += v; return n; });
  const w = canvas.width, h = canvas.height, pad = 28, max = Math.max(1, ...values), bw = (w - pad) / values.length;
  ctx.clearRect(0, 0, w, h); ctx.font = "12px system-ui"; ctx.fillStyle = "#6a716d";
  ctx.fillText(String(max), 2, 14); ctx.fillText("0", 2, h - pad + 4);
  values.forEach((v, i) => {
    const bh = ((h - pad - 10) * v) / max;
    ctx.fillStyle = "#1d6b45"; ctx.fillRect(pad + i * bw + 2, h - pad - bh, bw - 4, bh);
    if (i % 3 === 0) { ctx.fillStyle = "#6a716d"; ctx.fillText(siteClock(siteTz, hours[i].getTime(), { date: false }).slice(0, 2) + "h", pad + i * bw, h - 8); }
  });
}

async function refreshChart(site) {
  const to = new Date(), from = new Date(to - 24 * 3600e3);
  const q = new URLSearchParams({ site, bucket: "hour", from: from.toISOString(), to: to.toISOString(), limit: "100000" });
  const body = await newest("chart", `/api/v1/counts?${q}`);
  if (body) drawChart(body.series);
}

const STATES = { ok: "OK", breach: "BREACH", not_judged: "too few items" };

function renderAlerts(data) {  // targets judged now (line colours) and the last alerts
  const lines = new Map();
  for (const t of data.targets) lines.set(t.line, lines.get(t.line) === "breach" || t.state === "breach" ? "breach" : (lines.get(t.line) || t.state));
  $("lines-panel").hidden = !data.targets.length;
  $("line-table").tBodies[0].innerHTML = data.targets.map((t) =>
    `<tr class="${t.state}" data-line="${esc(t.line)}" data-line-state="${lines.get(t.line)}"><td>${esc(t.line)}</td><td>${esc(t.summary)}</td>` +
    `<td>${pct(t.measured)}</td><td>${t.items}</td><td class="state">${STATES[t.state]}</td></tr>`).join("");
  $("alert-table").tBodies[0].innerHTML = data.alerts.map((a) =>
    `<tr class="${a.open ? "open-alert" : "closed-alert"}" data-alert="${a.id}"><td>${esc(a.line ? `${a.line}: ${a.summary}` : a.summary)}</td>` +
    `<td>${siteClock(siteTz, a.started)}</td><td>${a.ended ? siteClock(siteTz, a.ended) : "open"}</td><td>${a.kind === "purity" ? `${pct(a.value)} of ${a.items}` : a.value}</td></tr>`).join("") ||
    '<tr><td colspan="4" class="muted">no alerts</td></tr>';
}

async function refreshLabels(site) {
  const from = new Date(Date.now() - 7 * 86400e3);
  const body = await newest("labels", `/api/v1/labels?${new URLSearchParams({ site, from: from.toISOString() })}`);
  if (!body) return;  // an older answer arriving late must not hide a label just added
  $("label-table").tBodies[0].innerHTML = body.labels.map((l) =>
    `<tr data-label="${l.id}"><td>${esc(l.text)}${l.line ? ` <span class="muted">(${esc(l.line)})</span>` : ""}</td>` +
    `<td>${siteClock(siteTz, l.start)} – ${siteClock(siteTz, l.end, { date: false })}</td><td>${l.total}</td>` +
    `<td>${Object.entries(l.shares).map(([c, v]) => `${esc(c)} ${pct(v)}`).join(", ") || "–"}</td></tr>`).join("") ||
    '<tr><td colspan="4" class="muted">no labelled periods this week</td></tr>';
}

async function addLabel(site) {
  const at = (hhmm) => siteInstant(siteTz, siteDate(siteTz), hhmm);  // today on the site's clock
  const body = { site, start: at($("label-from").value), end: at($("label-to").value), text: $("label-text").value.trim() };
  if ($("label-line").value.trim()) body.line = $("label-line").value.trim();
  const r = await fetch("/api/v1/labels", {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!r.ok) {
    const detail = (await r.json().catch(() => ({}))).detail;
    $("label-error").textContent = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail || `HTTP ${r.status}`;
    return;
  }
  $("label-error").textContent = ""; $("label-text").value = "";
  await refreshLabels(site);
}


function drawComposition(body) {  // one slot per bucket of the period (96 quarter hours, or 7 days), stacked shares
  const canvas = $("composition"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 34;
  const points = body.series, first = new Date(body.from), daily = body.bucket === "day";
  const width = daily ? 86400e3 : 900e3, slots = daily ? 7 : 96, bw = (w - pad) / slots;
  ctx.clearRect(0, 0, w, h); ctx.font = "12px system-ui"; ctx.fillStyle = "#6a716d";
  ctx.fillText("100%", 0, 12); ctx.fillText("0", 20, h - pad + 4);
  const ticks = [];
  for (let i = 0; i < slots; i += daily ? 1 : 12) {
    const t = first.getTime() + i * width;
    ticks.push(daily ? siteWeekday(siteTz, t) : siteClock(siteTz, t, { date: false }));
    ctx.fillText(ticks[ticks.length - 1], pad + i * bw, h - 10);
  }
  canvas.dataset.ticks = ticks.join(" ");
  points.forEach((p) => {
    const i = Math.min(slots - 1, Math.max(0, Math.round((new Date(p.start) - first) / width)));
    let y = h - pad;
    body.classes.forEach((c, k) => {
      const bh = (h - pad - 8) * (p.shares[c] || 0);
      ctx.fillStyle = colour(c, k); ctx.fillRect(pad + i * bw + 1, y - bh, Math.max(1, bw - 2), bh); y -= bh;
    });
  });
  ctx.fillStyle = "#6a716d";
  if (!points.length) ctx.fillText("nothing counted in this period yet", pad + 10, h / 2);
  canvas.dataset.buckets = String(points.length);
  canvas.dataset.items = String(points.reduce((a, p) => a + p.total, 0));
  $("comp-legend").innerHTML = body.classes.map((c, k) => `<span><i style="background:${colour(c, k)}"></i>${c}</span>`).join("");
}

async function refreshComposition(site) {
  const week = $("comp-range").value === "week", to = new Date();
  const from = new Date(siteInstant(siteTz, siteDate(siteTz, week ? to - 6 * 86400e3 : to), "00:00"));
  const q = new URLSearchParams({ site, bucket: week ? "day" : "15min", from: from.toISOString(), to: to.toISOString() });
  const body = await newest("composition", `/api/v1/composition?${q}`);
  if (body) drawComposition(body);
}

const span = (i) => (i && i.n ? `${pct(i.value)} (${pct(i.low)}–${pct(i.high)})` : "–");
async function refreshTrust(site) {  // reviewed accuracy (random items only) and today's composition through it
  const acc = await api(`/api/v1/reviews/accuracy?${new URLSearchParams({ site })}`);
  const from = new Date(siteInstant(siteTz, siteDate(siteTz), "00:00"));
  const comp = await api(`/api/v1/composition?${new URLSearchParams({ site, bucket: "day", from: from.toISOString(), adjusted: "true" })}`);
  const est = comp.adjusted;
  $("trust-table").hidden = !acc.items;
  $("trust-summary").textContent = acc.items
    ? `Right material on ${span(acc.accuracy)} of ${acc.items} randomly sampled items people reviewed (classifier ${acc.classifier}); ` +
      (acc.agreement.items ? `reviewers agreed on ${acc.agreement.agreed} of ${acc.agreement.items} items shown to two.`
      : "no item has been shown to two reviewers yet.")
    : "No randomly sampled items reviewed yet: reviewers label them at /review.";
  $("trust-table").querySelector("tbody").innerHTML = acc.classes.map((c) =>
    `<tr><td>${esc(c)}</td><td>${span(acc.recall[c])}</td><td>${span(acc.precision[c])}</td>` +
    `<td>${pct(est.counted_shares[c])}</td><td>${est.reliable ? span(est.estimated_shares[c]) : "–"}</td></tr>`).join("");
  $("trust-estimate").textContent = est.reliable
    ? "Estimated shares correct today's counts by the reviewed confusion matrix: an estimate, not a count."
    : `No estimate yet: ${est.reason}.`;
  $("trust-panel").dataset.accuracy = acc.items ? String(acc.accuracy.value) : "";
}

let compositionTimer = null;
function scheduleComposition(site) {  // charts and labelled periods, at most once a second, after counts change
  if (compositionTimer) return;
  compositionTimer = setTimeout(() => {
    compositionTimer = null;
    refreshComposition(site).catch(() => {});
    refreshChart(site).catch(() => {});
    refreshLabels(site).catch(() => {});
  }, 1000);
}

function connect(site) {
  if (source) source.close();
  source = new EventSource(`/api/v1/live?site=${encodeURIComponent(site)}&token=${encodeURIComponent(token)}`);
  source.addEventListener("totals", (e) => {
    renderTotals(JSON.parse(e.data)); $("live-state").textContent = `updated ${siteClock(siteTz, Date.now(), { date: false, seconds: true })}`;
    scheduleComposition(site);
  });
  source.addEventListener("health", (e) => renderDevices(JSON.parse(e.data).devices));
  source.addEventListener("alerts", (e) => renderAlerts(JSON.parse(e.data)));
  source.onerror = () => { $("live-state").textContent = "reconnecting…"; };
}

async function refreshShifts(site) {
  const body = await api(`/api/v1/shifts?${new URLSearchParams({ site })}`);
  $("report-shift").innerHTML = shiftOptions(body.shifts);
  $("report-none").hidden = body.shifts.length > 0; $("report-form").hidden = !body.shifts.length;
  if (!$("report-date").value) $("report-date").value = siteDate(siteTz);
}

function openReport(site) {
  location.href = `/reports/shift?${new URLSearchParams({ site, date: $("report-date").value, shift: $("report-shift").value })}`;
}

let siteTz = Intl.DateTimeFormat().resolvedOptions().timeZone, siteList = [];
async function open(site) {
  localStorage.setItem("farz-site", site);
  siteTz = (siteList.find((s) => s.id === site) || {}).tz || siteTz;
  connect(site);
  await refreshChart(site);
  await refreshLabels(site).catch(() => {});
  await refreshShifts(site).catch(() => {});
  await refreshTrust(site).catch(() => {});
  clearInterval(trustTimer);
  trustTimer = setInterval(() => refreshTrust(site).catch(() => {}), 60000);
}
let trustTimer = null;

async function start() {
  const sites = await openSites(params.get("site"));
  if (!sites) return;
  siteList = sites;
  $("site").onchange = () => open($("site").value);
  $("comp-range").onchange = () => refreshComposition($("site").value);
  $("label-form").onsubmit = (e) => { e.preventDefault(); addLabel($("site").value); };
  $("report-form").onsubmit = (e) => { e.preventDefault(); openReport($("site").value); };
  if (sites.length) await open($("site").value);
  setInterval(() => refreshChart($("site").value), 60000);
}

$("login-form").onsubmit = (e) => { e.preventDefault(); token = $("token-input").value.trim(); start(); };
start();
