// /review: label the crops of one item at a time. Keys: 1-6 the material, Enter the device's guess,
// x not one item, ? can't tell, z undo. Labels are sent in the background; the next items are fetched ahead.
"use strict";
function showLogin() { $("login").hidden = false; $("main").hidden = true; }
const site = params.get("site") || "";
let classes = [], labels = [], queue = [], current = null, done = [], fetching = false, lastId = 0, status = null;

async function send(method, path, body) {
  const r = await fetch(path, {
    method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status === 401) { showLogin(); throw new Error("unauthorised"); }
  if (!r.ok && r.status !== 409 && r.status !== 404) throw new Error(`${path}: HTTP ${r.status}`);
  return r.status;
}

async function refill() {
  if (fetching || queue.length > 4) return;
  fetching = true;
  try {
    const q = `/api/v1/reviews/next?limit=10&after=${lastId}` + (site ? `&site=${encodeURIComponent(site)}` : "");
    const page = await api(q);
    if (!classes.length) { classes = page.classes; labels = page.labels; drawButtons(); $("site-name").textContent = `· ${page.site}`; }
    const seen = new Set([...queue, ...done, ...(current ? [current] : [])].map((i) => i.id));
    const fresh = page.items.filter((item) => !seen.has(item.id));
    queue.push(...fresh);
    if (page.items.length) lastId = Math.max(lastId, ...page.items.map((i) => i.id));
    else { lastId = 0; setTimeout(refill, 5000); }  // none after lastId: look again from the start soon
    if (!current && fresh.length) show();
    else if (!current) { $("item").hidden = true; $("empty").hidden = false; }
  } catch (e) { $("error").textContent = `Cannot load items: ${e.message}`; setTimeout(refill, 5000); }
  finally { fetching = false; }
}

function drawButtons() {
  const names = { not_item: "not one item", unknown: "can't tell" };
  const keys = { not_item: "x", unknown: "?" };
  $("buttons").innerHTML = labels.map((l, i) => {
    const key = keys[l] || String(i + 1);
    const swatch = classes.includes(l) ? `<i style="background:${colour(l, i)}"></i>` : "";
    return `<button type="button" data-label="${esc(l)}">${swatch}${esc(names[l] || l)}<kbd>${esc(key)}</kbd></button>`;
  }).join("") + `<button type="button" data-undo="1">undo<kbd>z</kbd></button>`;
  for (const b of $("buttons").querySelectorAll("button")) {
    b.onclick = () => (b.dataset.undo ? undo() : label(b.dataset.label));
  }
}

function show() {
  current = queue.shift() || null;
  $("item").hidden = !current; $("empty").hidden = !!current;
  for (const b of $("buttons").querySelectorAll("button[data-label]")) b.classList.toggle("guessed", !!current && b.dataset.label === current.guess);
  $("item").dataset.id = current ? String(current.id) : "";
  if (current) {
    $("guess").textContent = current.guess;
    const p = current.probabilities[current.guess];
    $("sure").textContent = p == null ? "" : `(${Math.round(p * 100)} % sure)`;
    $("crops").innerHTML = current.crops.map((src, k) => `<img alt="crop ${k + 1} of the item" src="${src}">`).join("");
  }
  progress();
  refill();
}

function progress() {
  const waiting = status ? Math.max(0, status.open - done.length) : null;
  $("progress").textContent = `${done.length} labelled` + (waiting != null ? ` · about ${waiting} waiting` : "");
}

function label(value) {
  if (!current || !labels.includes(value)) return;
  const item = current;
  done.push(item);
  send("POST", `/api/v1/reviews/${item.id}/label`, { label: value }).catch((e) => { $("error").textContent = `Label not saved: ${e.message}`; });
  show();
}

function undo() {
  const item = done.pop();
  if (!item) return;
  send("DELETE", `/api/v1/reviews/${item.id}/label`).catch((e) => { $("error").textContent = `Undo failed: ${e.message}`; });
  if (current) queue.unshift(current);
  queue.unshift(item);
  show();
}

document.addEventListener("keydown", (e) => {
  if ($("main").hidden || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k >= "1" && k <= "9" && Number(k) <= classes.length) label(classes[Number(k) - 1]);
  else if (k === "Enter" && current) label(current.guess);
  else if (k === "x" || k === "X") label("not_item");
  else if (k === "?") label("unknown");
  else if (k === "z" || k === "Z") undo();
  else return;
  e.preventDefault();
});
$("help-link").onclick = (e) => { e.preventDefault(); $("help").hidden = !$("help").hidden; };

async function start() {
  if (!token) { showLogin(); return; }
  try { status = await api("/api/v1/reviews/status" + (site ? `?site=${encodeURIComponent(site)}` : "")); }
  catch (e) { if (e.message !== "unauthorised") { showLogin(); $("error").textContent = e.message; } return; }
  localStorage.setItem("farz-token", token);
  $("login").hidden = true; $("main").hidden = false;
  refill();
}
$("login-form").onsubmit = (e) => { e.preventDefault(); token = $("token-input").value.trim(); start(); };
start();
