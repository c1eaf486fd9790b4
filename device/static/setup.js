// The sorting point's editor: count lines (drag the ends), count zones, privacy masks and ignore zones
// (polygons), in the same 0-1 coordinates as the agent config. Nothing is loaded from the internet.
"use strict";
const COLOURS = {lines: "#ffd54f", zones: "#4fc3f7", masks: "#ef5350", ignore: "#bdbdbd"};
const KIND_LABEL = {lines: "line", zones: "count zone", masks: "privacy mask", ignore: "ignore zone"};
const canvas = document.getElementById("editor"), ctx = canvas.getContext("2d"), img = document.getElementById("stream");
const state = {saved: null, edit: null, selected: null, drag: null, drawing: null, dry: null};
window.farzSetup = state;  // for tests and the curious

const $ = id => document.getElementById(id);
const clone = x => JSON.parse(JSON.stringify(x));
function say(text) { $("message").textContent = text; $("error").textContent = ""; }
function fail(text) { $("error").textContent = text; $("message").textContent = ""; }

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: body ? {"Content-Type": "application/json"} : {}, body: body ? JSON.stringify(body) : undefined});
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { location.href = "/login?next=/setup"; throw new Error("signed out"); }
  if (!r.ok) throw new Error(data.detail || `the device answered ${r.status}`);
  return data;
}

function size() { const r = canvas.getBoundingClientRect(); return [r.width, r.height]; }
function resize() {
  const [w, h] = size(), dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0); draw();
}
function toPx([x, y]) { const [w, h] = size(); return [x * w, y * h]; }
function toUnit(ev) {
  const r = canvas.getBoundingClientRect();
  const clamp = v => Math.min(1, Math.max(0, Math.round(v * 1000) / 1000));
  return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
}

function polygonPath(points, close) {
  ctx.beginPath();
  points.forEach((p, i) => { const [x, y] = toPx(p); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  if (close) ctx.closePath();
}
function handle(p, colour) { const [x, y] = toPx(p); ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.fillStyle = colour; ctx.fill(); ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.stroke(); }

function draw() {
  const [w, h] = size();
  ctx.clearRect(0, 0, w, h);
  if (!state.edit) return;
  for (const kind of ["masks", "ignore", "zones"]) {
    state.edit[kind].forEach((region, i) => {
      const selected = state.selected && state.selected.kind === kind && state.selected.index === i;
      polygonPath(region.polygon, true);
      ctx.fillStyle = kind === "masks" ? "rgba(0,0,0,0.85)" : kind === "ignore" ? "rgba(120,120,120,0.35)" : "rgba(79,195,247,0.15)";
      ctx.fill(); ctx.strokeStyle = COLOURS[kind]; ctx.lineWidth = selected ? 4 : 2; ctx.stroke();
      const [x, y] = toPx(region.polygon[0]); ctx.fillStyle = COLOURS[kind]; ctx.font = "14px system-ui"; ctx.fillText(region.name, x + 6, y + 16);
      if (selected) region.polygon.forEach(p => handle(p, COLOURS[kind]));
    });
  }
  state.edit.lines.forEach((line, i) => {
    const [x1, y1, x2, y2] = line.points, [a, b] = [toPx([x1, y1]), toPx([x2, y2])];
    const selected = state.selected && state.selected.kind === "lines" && state.selected.index === i;
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.strokeStyle = COLOURS.lines; ctx.lineWidth = selected ? 5 : 3; ctx.stroke();
    // the `in` side: where (x2-x1)*(y-y1) - (y2-y1)*(x-x1) > 0, i.e. along the normal (-(dy), dx)
    const [mx, my] = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
    const [nx, ny] = [-dy / len, dx / len], [tx, ty] = [mx + nx * 40, my + ny * 40];
    ctx.beginPath(); ctx.moveTo(mx, my); ctx.lineTo(tx, ty); ctx.lineWidth = 3; ctx.stroke();
    ctx.beginPath(); ctx.moveTo(tx, ty); ctx.lineTo(tx - nx * 10 - ny * 7, ty - ny * 10 + nx * 7); ctx.lineTo(tx - nx * 10 + ny * 7, ty - ny * 10 - nx * 7); ctx.closePath(); ctx.fillStyle = COLOURS.lines; ctx.fill();
    ctx.font = "bold 15px system-ui"; ctx.fillText("in", tx + nx * 8 - 6, ty + ny * 8 + 5); ctx.fillText(line.name, a[0] + 8, a[1] + 18);
    handle([x1, y1], COLOURS.lines); handle([x2, y2], COLOURS.lines);
  });
  if (state.drawing) {
    polygonPath(state.drawing.points, false); ctx.strokeStyle = COLOURS[state.drawing.kind]; ctx.setLineDash([6, 4]); ctx.lineWidth = 2; ctx.stroke(); ctx.setLineDash([]);
    state.drawing.points.forEach(p => handle(p, COLOURS[state.drawing.kind]));
  }
}

function list() {
  const items = [];
  for (const kind of ["lines", "zones", "masks", "ignore"]) state.edit[kind].forEach((x, i) => items.push({kind, index: i, name: x.name}));
  $("items").innerHTML = "";
  for (const it of items) {
    const li = document.createElement("li");
    li.dataset.kind = it.kind; li.dataset.index = it.index;
    li.className = state.selected && state.selected.kind === it.kind && state.selected.index === it.index ? "selected" : "";
    li.innerHTML = `<span></span><span class="muted">${KIND_LABEL[it.kind]}</span>`; li.firstChild.textContent = it.name;
    li.onclick = () => { state.selected = {kind: it.kind, index: it.index}; list(); draw(); };
    $("items").appendChild(li);
  }
  if (!items.length) $("items").innerHTML = "<li>nothing: add a line or a zone</li>";
}

function nearest(p) {
  // the closest draggable point within 20 px: a line end, or a vertex of the selected polygon
  const [w, h] = size(); let best = null, bestD = 20;
  const consider = (kind, index, vertex, q) => { const d = Math.hypot((q[0] - p[0]) * w, (q[1] - p[1]) * h); if (d < bestD) { bestD = d; best = {kind, index, vertex}; } };
  state.edit.lines.forEach((l, i) => { consider("lines", i, 0, [l.points[0], l.points[1]]); consider("lines", i, 1, [l.points[2], l.points[3]]); });
  for (const kind of ["zones", "masks", "ignore"]) state.edit[kind].forEach((r, i) => r.polygon.forEach((q, v) => consider(kind, i, v, q)));
  return best;
}

canvas.addEventListener("pointerdown", ev => {
  if (!state.edit) return;
  ev.preventDefault();
  const p = toUnit(ev);
  if (state.drawing) { state.drawing.points.push(p); $("finish").disabled = state.drawing.points.length < 3; draw(); return; }
  const hit = nearest(p);
  if (hit) { state.drag = hit; state.selected = {kind: hit.kind, index: hit.index}; canvas.setPointerCapture(ev.pointerId); list(); draw(); }
});
canvas.addEventListener("pointermove", ev => {
  if (!state.drag) return;
  ev.preventDefault();
  const p = toUnit(ev), d = state.drag;
  if (d.kind === "lines") { const pts = state.edit.lines[d.index].points; pts[2 * d.vertex] = p[0]; pts[2 * d.vertex + 1] = p[1]; }
  else state.edit[d.kind][d.index].polygon[d.vertex] = p;
  draw();
});
const endDrag = () => { if (state.drag) { state.drag = null; say("edited: try it with a dry run, then save"); } };
canvas.addEventListener("pointerup", endDrag); canvas.addEventListener("pointercancel", endDrag);

function uniqueName(kind, stem) { const names = new Set(["lines", "zones", "masks", "ignore"].flatMap(k => state.edit[k].map(x => x.name))); let n = 1; while (names.has(`${stem}-${n}`)) n++; return `${stem}-${n}`; }
$("add-line").onclick = () => { state.edit.lines.push({name: uniqueName("lines", "line"), points: [0.5, 0.9, 0.5, 0.1], anchor: "center"}); state.selected = {kind: "lines", index: state.edit.lines.length - 1}; list(); draw(); };
$("flip-line").onclick = () => {
  const s = state.selected; if (!s || s.kind !== "lines") { fail("select a line first"); return; }
  const p = state.edit.lines[s.index].points; state.edit.lines[s.index].points = [p[2], p[3], p[0], p[1]]; say("flipped: in and out swap"); draw();
};
for (const id of ["draw-zone", "draw-mask", "draw-ignore"]) $(id).onclick = () => { state.drawing = {kind: $(id).dataset.kind, points: []}; $("finish").disabled = true; say(`tap the corners of the ${KIND_LABEL[state.drawing.kind]}, then press finish`); draw(); };
$("finish").onclick = () => {
  const d = state.drawing; if (!d || d.points.length < 3) return;
  const stem = {zones: "zone", masks: "mask", ignore: "ignore"}[d.kind];
  const region = {name: uniqueName(d.kind, stem), polygon: d.points}; if (d.kind === "zones") region.anchor = "center";
  state.edit[d.kind].push(region); state.selected = {kind: d.kind, index: state.edit[d.kind].length - 1}; state.drawing = null; $("finish").disabled = true;
  say(`${KIND_LABEL[d.kind]} added: save to use it`); list(); draw();
};
$("delete").onclick = () => { const s = state.selected; if (!s) { fail("select something first"); return; } state.edit[s.kind].splice(s.index, 1); state.selected = null; list(); draw(); };
$("revert").onclick = () => { state.edit = clone(state.saved); state.selected = null; state.drawing = null; say("back to the saved setup"); list(); draw(); };

function showDry(d) {
  state.dry = d;
  $("stop-dry-run").disabled = !d.active;
  if (!d.active) { $("dry-state").textContent = "not running: the next items are counted only with the saved setup."; return; }
  const totals = ["in", "out"].map(dir => `${dir}: ${Object.values(d.totals[dir] || {}).reduce((a, b) => a + b, 0)}`).join(" · ");
  $("dry-state").textContent = `running for ${d.seconds} s over ${d.frames} frames: ${d.counted} counted with the edited setup (${totals}); not stored, not sent`;
  $("dry-state").dataset.counted = d.counted;
  $("dry-events").innerHTML = "";
  for (const e of d.events.slice().reverse()) { const tr = document.createElement("tr"); for (const v of [e.line, e.class, e.direction]) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); } $("dry-events").appendChild(tr); }
}
async function pollDry() { try { showDry(await api("GET", "/api/setup/dry-run")); } catch (e) { /* shown on the next action */ } }
$("dry-run").onclick = async () => { try { showDry(await api("POST", "/api/setup/dry-run", state.edit)); say("dry run started: watch the next items"); } catch (e) { fail(e.message); } };
$("stop-dry-run").onclick = async () => { try { await api("DELETE", "/api/setup/dry-run"); showDry({active: false}); } catch (e) { fail(e.message); } };
$("save").onclick = async () => {
  try { const r = await api("PUT", "/api/setup", state.edit); state.saved = clone(r.count); state.edit = clone(r.count); say(`saved to ${r.saved} (the previous version is ${r.backup}); counting with it now`); showDry({active: false}); list(); draw(); }
  catch (e) { fail(e.message); }
};

async function load() {
  const s = await api("GET", "/api/setup");
  $("device").textContent = s.device_id || "device";
  state.saved = clone(s.count); state.edit = clone(s.count);
  $("save").disabled = !s.can_save; if (!s.can_save) fail("this agent was started without a config file: edits can be tried, not saved");
  list(); resize();
}
img.addEventListener("load", resize); window.addEventListener("resize", resize);
if (window.ResizeObserver) new ResizeObserver(resize).observe(canvas);
load().catch(e => fail(e.message)); setInterval(pollDry, 1000);
