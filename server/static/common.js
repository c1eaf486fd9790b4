// farz pages' shared helpers: the token (from #token= or the browser's storage), API reads, escaping, formats
// and the class colours. No external assets.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
let token = params.get("token") || localStorage.getItem("farz-token") || "";
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (r.status === 401) { showLogin(); throw new Error("unauthorised"); }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v) => (v == null ? "–" : `${(v * 100).toFixed(1)} %`);
const COLOURS = { cardboard: "#a0522d", glass: "#2a9d8f", metal: "#6c757d", paper: "#e9c46a", plastic: "#1d6fb8", trash: "#b23b1e" };
const colour = (c, i) => COLOURS[c] || ["#7b2cbf", "#f4a261", "#588157", "#d62828"][i % 4];

// Log in with the token and fill the #site picker (choosing `wanted` or the last site); the sites, or null.
async function openSites(wanted) {
  if (!token) { showLogin(); return null; }
  let sites;
  try { sites = await api("/api/v1/sites"); } catch (e) { return null; }
  localStorage.setItem("farz-token", token);
  $("login").hidden = true; $("main").hidden = false;
  for (const s of sites) if (s.utc_offsets) zoneOffsets.set(s.tz, s.utc_offsets.map(([at, minutes]) => [Date.parse(at), minutes]));
  $("site").innerHTML = sites.map((s) => `<option value="${esc(s.id)}">${esc(s.name)}</option>`).join("");
  const pick = wanted || localStorage.getItem("farz-site");
  if (pick && sites.some((s) => s.id === pick)) $("site").value = pick;
  return sites;
}

const shiftOptions = (shifts) => shifts.map((s) => `<option value="${esc(s.name)}">${esc(s.name)} (${s.start}–${s.end})</option>`).join("");

// Wall-clock time in a site's time zone: today's date there ("YYYY-MM-DD"), and the instant of a date and
// "HH:MM" there as ISO-8601 (forms, "today" and every time shown follow the site's clock, not the browser's).
// The server's UTC offsets for the site's zone come first (one rule book for the server's site days and the
// page, whatever the browser's own copy says); the browser's Intl rules only outside them.
const zoneOffsets = new Map();  // tz -> [[first UTC ms it holds, minutes east of UTC]], oldest first
function zoneParts(tz, t) {
  const table = zoneOffsets.get(tz);
  if (table && table.length && t >= table[0][0]) {
    let minutes = table[0][1];
    for (const [at, m] of table) { if (at > t) break; minutes = m; }
    const d = new Date(t + minutes * 60e3);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  }
  const f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric" });
  return Object.fromEntries(f.formatToParts(new Date(t)).map((p) => [p.type, Number(p.value)]));
}
// An instant (ISO-8601 or ms) on a site's wall clock: "YYYY-MM-DD HH:MM", without the date or with seconds on request.
function siteClock(tz, t, { date = true, seconds = false } = {}) {
  const p = zoneParts(tz, typeof t === "string" ? Date.parse(t) : t), two = (n) => String(n).padStart(2, "0");
  const time = `${two(p.hour)}:${two(p.minute)}${seconds ? `:${two(p.second)}` : ""}`;
  return date ? `${p.year}-${two(p.month)}-${two(p.day)} ${time}` : time;
}
function siteDate(tz, t = Date.now()) {
  const p = zoneParts(tz, t);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}
function siteWeekday(tz, t) {  // "Mon" .. "Sun" on the site's clock, in the browser's language
  return new Intl.DateTimeFormat([], { weekday: "short", timeZone: "UTC" }).format(Date.parse(`${siteDate(tz, t)}T12:00:00Z`));
}
function siteInstant(tz, date, hhmm) {
  const [y, mo, d] = date.split("-").map(Number), [h, mi] = hhmm.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const offset = (t) => { const p = zoneParts(tz, t); return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - t; };
  let t = wall - offset(wall);
  t = wall - offset(t);  // once more across a daylight-saving change
  return new Date(t).toISOString();
}
