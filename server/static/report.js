// farz shift report page: the JSON of /api/v1/reports/shift drawn as a printable page (same numbers as the API,
// the CSV and the PDF). Times are shown as the server writes them, in the site's own time zone. No external assets.
"use strict";
const query = new URLSearchParams(location.search);
let report = null;

function showLogin() { $("login").hidden = false; $("main").hidden = true; }

function siteTime(iso, withDate) {  // the server writes times in the site's own zone: show its wall clock as written
  return withDate ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

function countsRows(block) {
  const classes = [...new Set([...Object.keys(block.counts.in || {}), ...Object.keys(block.counts.out || {})])].sort();
  return classes.map((c) => `<tr data-class="${esc(c)}"><td>${esc(c)}</td><td class="count-in">${block.counts.in[c] || 0}</td>` +
    `<td>${(block.counts.out || {})[c] || 0}</td><td>${pct(block.shares[c])}</td></tr>`).join("") +
    `<tr class="all"><td>all</td><td class="count-in">${block.total_in}</td><td>${block.total_out}</td><td>${block.total_in ? "100.0 %" : "–"}</td></tr>`;
}

function drawHours(hours, classes, shift) {  // stacked items per class, one slot per hour of the shift
  const canvas = $("hours"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 34;
  const first = new Date(shift.start).getTime(), slots = Math.max(1, Math.ceil(shift.hours));
  const max = Math.max(1, ...hours.map((x) => x.total)), bw = (w - pad) / slots;
  ctx.clearRect(0, 0, w, h); ctx.font = "12px system-ui"; ctx.fillStyle = "#6a716d";
  ctx.fillText(String(max), 0, 12); ctx.fillText("0", 20, h - pad + 4);
  for (let i = 0; i < slots; i += slots > 12 ? 3 : 1) {  // the shift's wall clock, as the server wrote its start
    const hour = (Number(shift.start.slice(11, 13)) + i) % 24;
    ctx.fillText(`${String(hour).padStart(2, "0")}:${shift.start.slice(14, 16)}`, pad + i * bw + 2, h - 10);
  }
  hours.forEach((x) => {
    const i = Math.min(slots - 1, Math.max(0, Math.floor((new Date(x.start).getTime() - first) / 3600e3)));
    let y = h - pad;
    classes.forEach((c, k) => {
      const bh = ((h - pad - 8) * (x.counts[c] || 0)) / max;
      ctx.fillStyle = colour(c, k); ctx.fillRect(pad + i * bw + 2, y - bh, Math.max(1, bw - 4), bh); y -= bh;
    });
  });
  ctx.fillStyle = "#6a716d";
  if (!hours.length) ctx.fillText("nothing was counted in this shift", pad + 10, h / 2);
  canvas.dataset.items = String(hours.reduce((a, x) => a + x.total, 0));
  $("hour-legend").innerHTML = classes.map((c, k) => `<span><i style="background:${colour(c, k)}"></i>${esc(c)}</span>`).join("");
}

function render(r) {
  const tz = r.site.tz, s = r.shift, none = (n) => `<tr><td colspan="${n}" class="muted">none</td></tr>`;
  $("title").textContent = `${r.site.name}: shift ${s.name} of ${s.date}`;
  $("period").textContent = `${siteTime(s.start, true)} – ${siteTime(s.end, true)} (${tz}, ${s.hours} h)${s.in_progress ? " · in progress" : ""}`;
  $("generated").textContent = `generated ${siteTime(r.generated, true)}`;
  $("total-in").textContent = r.totals.total_in; $("total-out").textContent = r.totals.total_out;
  $("alert-count").textContent = r.alerts.length;
  $("totals").tBodies[0].innerHTML = countsRows(r.totals);
  $("lines").innerHTML = r.lines.map((l) => `<section class="panel" data-line="${esc(l.line)}"><h2>Line ${esc(l.line)}</h2><table>` +
    `<thead><tr><th>class</th><th>in</th><th>out</th><th>share of in</th></tr></thead><tbody>${countsRows(l)}</tbody></table></section>`).join("");
  const classes = [...new Set(r.hours.flatMap((x) => Object.keys(x.counts)))].sort();
  drawHours(r.hours, classes, s);
  $("hour-table").tHead.innerHTML = `<tr><th>hour</th>${classes.map((c) => `<th>${esc(c)}</th>`).join("")}<th>all</th></tr>`;
  $("hour-table").tBodies[0].innerHTML = r.hours.map((x) => `<tr><td>${siteTime(x.start)}</td>` +
    `${classes.map((c) => `<td>${x.counts[c] || 0}</td>`).join("")}<td>${x.total}</td></tr>`).join("") || none(2);
  $("purity").tBodies[0].innerHTML = r.purity.map((p) => `<tr class="${p.met === false ? "breach" : p.met ? "ok" : ""}" data-target="${p.target_id}">` +
    `<td>${esc(p.line)}</td><td>${esc(p.summary)}</td><td>${pct(p.measured)}</td><td>${p.items}</td>` +
    `<td class="state">${p.met == null ? "too few items" : p.met ? "met" : "MISSED"}</td><td>${p.alerts}</td><td>${p.breach_minutes}</td></tr>`).join("") || none(7);
  $("alerts").tBodies[0].innerHTML = r.alerts.map((a) => `<tr class="${a.open ? "open-alert" : "closed-alert"}"><td>${esc(a.line ? `${a.line}: ${a.summary}` : a.summary)}</td>` +
    `<td>${siteTime(a.started)}</td><td>${a.ended ? siteTime(a.ended) : "open"}</td>` +
    `<td>${a.kind === "purity" ? `${pct(a.value)} of ${a.items}` : a.value}</td></tr>`).join("") || none(4);
  $("devices").tBodies[0].innerHTML = r.devices.map((d) => `<tr data-device="${esc(d.device)}"><td>${esc(d.device)}</td>` +
    `<td class="availability">${pct(d.availability)}</td><td>${(d.down_s / 60).toFixed(1)}</td>` +
    `<td class="models">${d.models.map(esc).join("<br>") || "–"}</td></tr>`).join("") || none(4);
  $("labels").tBodies[0].innerHTML = r.labels.map((l) => `<tr><td>${esc(l.text)}${l.line ? ` (${esc(l.line)})` : ""}</td>` +
    `<td>${siteTime(l.start)}–${siteTime(l.end)}</td><td>${l.total}</td>` +
    `<td>${Object.entries(l.shares).map(([c, v]) => `${esc(c)} ${pct(v)}`).join(", ") || "–"}</td></tr>`).join("") || none(4);
  $("report").hidden = false;
}

function reportQuery(format) {
  const q = new URLSearchParams({ site: $("site").value, date: $("date").value, shift: $("shift").value });
  if (format) q.set("format", format);
  return `/api/v1/reports/shift?${q}`;
}

async function download(format) {  // the token goes in a header, never in a URL
  const r = await fetch(reportQuery(format), { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) { $("error").textContent = `HTTP ${r.status}`; return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = `farz-${$("site").value}-${$("date").value}-${$("shift").value}.${format}`;
  a.click();
}

async function show() {
  $("error").textContent = "";
  if (!$("shift").value || !$("date").value) { $("report").hidden = true; return; }
  history.replaceState(null, "", `?${new URLSearchParams({ site: $("site").value, date: $("date").value, shift: $("shift").value })}`);
  try {
    report = await api(reportQuery());
    render(report);
  } catch (e) {
    $("report").hidden = true; $("error").textContent = `no report: ${e.message}`;
  }
}

async function loadShifts() {
  const body = await api(`/api/v1/shifts?${new URLSearchParams({ site: $("site").value })}`);
  $("shift").innerHTML = shiftOptions(body.shifts);
  if (!body.shifts.length) $("error").textContent = "this site has no shifts yet: an admin adds them with `farz server admin set-shift`";
  if (query.get("shift") && body.shifts.some((s) => s.name === query.get("shift"))) $("shift").value = query.get("shift");
}

async function start() {
  const sites = await openSites(query.get("site"));
  if (!sites) return;
  const tz = (sites.find((s) => s.id === $("site").value) || {}).tz || Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("date").value = query.get("date") || siteDate(tz);  // today on the site's clock
  $("site").onchange = async () => { await loadShifts(); await show(); };
  $("pick").onsubmit = (e) => { e.preventDefault(); show(); };
  $("print").onclick = () => window.print();
  $("csv").onclick = () => download("csv");
  $("pdf").onclick = () => download("pdf");
  await loadShifts();
  await show();
}

$("login-form").onsubmit = (e) => { e.preventDefault(); token = $("token-input").value.trim(); start(); };
start();
