// The dashboard: login, map, faults, commands, schedules, energy, device pages; hash routes (#/map,
// #/faults, #/commands, #/schedules, #/energy, #/luminaire/ID, #/controller/ID). The grid operator
// sees the energy page only.
import { api, all, ApiError, token, whenUnauthorized, keepRenewed, renew } from "./api.js";
import { h, fill, when, details } from "./dom.js";
import { PointLayer, translateWhilePanning } from "./map.js";
import { initSchedules, loadSchedules, loadLuminaire, loadController } from "./schedules.js";
import { openEnergy, gridIdentity } from "./energy.js";
import { initSelection } from "./selection.js";
import { initSensors } from "./sensors.js";
import { config as dashboardConfig } from "./clock.js";

const FIELD = new Set(["admin", "operator", "technician"]); // command, acknowledge, comment
const OPERATE = new Set(["admin", "operator"]); // assign
const LIVE_EVERY_MS = 5000;
const PROGRESS_EVERY_MS = 2000;
const COLOURS = {
  fault: "#d62828", offline: "#8d99ae", off: "#2b2d42", dimmed: "#f4a261", on: "#ffd60a", unknown: "#c0c0c0",
};

const state = {
  me: null,
  map: null,
  byDevice: new Map(), // "controller/idx" -> luminaire id
  features: new Map(), // luminaire id -> feature
  faultIds: new Set(), // luminaire ids with an open fault (feature-state fault)
  timers: new Set(),
};
window.luciole = state; // for the browser tests and for curious technicians

const $ = (id) => document.getElementById(id);
const may = (roles) => state.me && roles.has(state.me.role);

function say(text, kind = "error") {
  const box = $("message");
  box.className = kind;
  fill(box, text);
  box.hidden = !text;
}

function report(err) {
  say(err instanceof ApiError ? err.message : `Something went wrong: ${err.message}`);
}

function every(ms, fn) {
  const id = setInterval(() => fn().catch(report), ms);
  state.timers.add(id);
  return id;
}

function stop(id) { clearInterval(id); state.timers.delete(id); }

// ------------------------------------------------------------------ login

async function login(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  fill($("login-error"));
  try {
    const issued = await api("/auth/token", { method: "POST", form: {
      username: form.get("username"), password: form.get("password") } });
    token.set(issued.access_token, issued.expires_in);
    await start();
  } catch (err) {
    fill($("login-error"), err.status === 401 ? "Wrong email or password (or the account is locked for a while)."
      : err.message);
  }
}

function logout() {
  token.clear();
  for (const id of state.timers) clearInterval(id);
  state.timers.clear();
  location.hash = "#/login";
  location.reload();
}

async function start() {
  try {
    state.me = await api("/me");
  } catch (err) {
    state.me = err.status === 403 ? await gridIdentity() : null; // the grid operator has no /me
    if (!state.me) {
      token.clear();
      show("login");
      return;
    }
  }
  const grid = state.me.role === "grid_operator";
  if (!state.me.tenant && !grid) {
    fill($("login-error"), "This dashboard is for a municipality's users; the grid operator uses the API.");
    token.clear();
    show("login");
    return;
  }
  await dashboardConfig().catch(report); // the API's clock, before any period is taken
  $("bar").hidden = false;
  fill($("who"), `${state.me.tenant ?? "grid operator"} · ${state.me.role}`);
  if (!token.expiresAt()) await renew().catch(() => {}); // a token from before: learn its lifetime
  const ended = () => {
    token.clear(); state.me = null; say("Your session has ended: please log in again."); show("login");
  };
  keepRenewed(ended);
  state.rearm = () => keepRenewed(ended); // for the browser tests: after moving the expiry
  document.body.dataset.role = state.me.role;
  for (const el of document.querySelectorAll(".field-only")) el.hidden = !may(FIELD);
  if (!location.hash || location.hash === "#/login") location.hash = grid ? "#/energy" : "#/map";
  route();
}

// ------------------------------------------------------------------ routing

function show(page) {
  for (const el of document.querySelectorAll(".page")) el.hidden = el.id !== `page-${page}`;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("current", a.dataset.page === page);
}

function route() {
  if (!state.me) { show("login"); return; }
  const [page, query] = location.hash.replace(/^#\//, "").split("?");
  const params = new URLSearchParams(query || "");
  say("");
  if (state.me.role === "grid_operator" && page !== "energy") { location.hash = "#/energy"; return; }
  if (page === "energy") { show("energy"); openEnergy(state.me).catch(report); }
  else if (page === "faults") { show("faults"); loadFaults().catch(report); }
  else if (page === "commands") { show("commands"); loadCommands().catch(report); }
  else if (page === "schedules") { show("schedules"); loadSchedules().catch(report); }
  else if (page.startsWith("luminaire/")) { show("device"); loadLuminaire(Number(page.split("/")[1])).catch(report); }
  else if (page.startsWith("controller/")) { show("device"); loadController(decodeURIComponent(page.split("/")[1])).catch(report); }
  else {
    show("map");
    openMap().then(() => {
      if (params.get("l")) focusLuminaire(Number(params.get("l")));
    }).catch(report);
  }
}

// ------------------------------------------------------------------ map

function statusOf(props) {
  if (state.faultIds.has(props.id)) return "open fault";
  if (props.online === false) return "offline";
  if (props.level === null || props.level === undefined) return "no reading yet";
  if (props.level === 0) return "off";
  if (props.level < 254) return "dimmed";
  return "on";
}

function colourOf(id) {
  const props = state.features.get(id).properties;
  if (state.faultIds.has(id)) return COLOURS.fault;
  if (props.online === false) return COLOURS.offline;
  if (props.level === null || props.level === undefined) return COLOURS.unknown;
  if (props.level === 0) return COLOURS.off;
  if (props.level < 254) return COLOURS.dimmed;
  return COLOURS.on;
}

function recolour(id) {
  state.points.setColour(id, colourOf(id));
}

// What the map shows of a luminaire: its level, online and open fault (for tests and tools).
state.stateOf = (id) => {
  const f = state.features.get(id);
  return f ? { level: f.properties.level, online: f.properties.online, fault: state.faultIds.has(id),
    colour: colourOf(id) } : null;
};

// Once: a login calls route() and then the hash change calls it again; both wait for one map.
async function openMap() {
  if (state.mapOpening) { await state.mapOpening; state.map.resize(); return; }
  state.mapOpening = buildMap();
  await state.mapOpening;
}

async function buildMap() {
  const config = await dashboardConfig();
  const sources = {};
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#e8ecef" } }];
  if (config.tile_url) {
    sources.tiles = { type: "raster", tiles: [config.tile_url], tileSize: 256 };
    layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  const map = new maplibregl.Map({
    container: "map", style: { version: 8, sources, layers }, center: [4.35, 50.85], zoom: 11,
    attributionControl: false,
  });
  state.map = map;
  state.panning = translateWhilePanning(map, () => Boolean(state.points && state.points.dirty));
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  state.marks = {};
  const data = Promise.all([api("/map/luminaires"), api("/cabinets")]).then((got) => {
    state.marks.dataParsed = performance.now();
    return got;
  });
  await new Promise((resolve) => map.once("load", resolve));
  state.marks.mapLoaded = performance.now();
  const [cols, cabinets] = await data;
  state.changedSince = cols.changed_since;
  const located = cols.id.map((id, i) => ({ id, geometry: { coordinates: [cols.lon[i], cols.lat[i]] },
    properties: { id, controller_id: cols.controller_id[i], idx: cols.idx[i], level: cols.level[i],
      online: cols.online[i] } }));
  for (const f of located) {
    state.features.set(f.id, f);
    state.byDevice.set(`${f.properties.controller_id}/${f.properties.idx}`, f.id);
  }
  map.addSource("cabinets", { type: "geojson", data: { type: "FeatureCollection", features: cabinets
    .filter((c) => c.lat !== null && c.lon !== null)
    .map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: [c.lon, c.lat] },
      properties: { id: c.id, name: c.name } })) } });
  map.addLayer({ id: "cabinets", type: "circle", source: "cabinets", paint: {
    "circle-radius": 7, "circle-color": "#fff", "circle-stroke-color": "#14213d", "circle-stroke-width": 3 } });
  const points = new PointLayer("luminaires", cols.id, cols.lon, cols.lat);
  state.points = points;
  for (const f of located) recolour(f.id);
  map.addLayer(points);
  state.marks.layerAdded = performance.now();
  map.once("idle", () => { state.firstMapMs = performance.now(); }); // since navigation start
  map.on("click", (e) => {
    const id = points.pick(e.point);
    if (id !== null) openPanel(id).catch(report);
  });
  map.on("click", "cabinets", (e) => say(`Cabinet ${e.features[0].properties.id}`, "info"));
  fitTo(located);
  fill($("legend"), Object.entries({ on: "on", dimmed: "dimmed", off: "off", offline: "offline",
    fault: "open fault", unknown: "no reading" })
    .flatMap(([k, label]) => [h("span", { style: `background:${COLOURS[k]}` }), label]),
  h("label", { class: "layer-toggle" }, h("input", { type: "checkbox", id: "toggle-cabinets", checked: true,
    onchange: (e) => map.setLayoutProperty("cabinets", "visibility", e.target.checked ? "visible" : "none") }),
  "cabinets"));
  state.selection = initSelection({ map, ids: cols.id, lons: cols.lon, lats: cols.lat,
    mayCommand: () => may(FIELD), send, report });
  state.sensors = initSensors({ map, report, legend: $("legend") });
  await refreshFaults();
  every(LIVE_EVERY_MS, refreshLive);
  every(LIVE_EVERY_MS * 6, refreshFaults);
  state.mapReady = true;
}

function fitTo(features) {
  if (!features.length) return;
  const bounds = new maplibregl.LngLatBounds();
  for (const f of features) bounds.extend(f.geometry.coordinates);
  state.map.fitBounds(bounds, { padding: 40, maxZoom: 17, duration: 0 });
}

async function refreshFaults() {
  const open = await all("/faults?state=open");
  const now = new Set();
  for (const fault of open) {
    const id = state.byDevice.get(`${fault.controller_id}/${fault.luminaire_idx}`);
    if (id !== undefined) now.add(id);
  }
  const before = state.faultIds;
  state.faultIds = now;
  for (const id of before) if (!now.has(id)) recolour(id);
  for (const id of now) recolour(id);
  state.map.triggerRepaint();
}

// Live state: each tick reads only what changed since the last sweep (GET /live?changed_since=),
// all its pages, and recolours those points.
async function refreshLive() {
  if (!state.map || document.hidden || !state.changedSince) return;
  let cursor = null;
  let next = null;
  do {
    const q = new URLSearchParams({ changed_since: state.changedSince, limit: "1000" });
    if (cursor) q.set("cursor", cursor);
    const page = await api(`/live?${q}`);
    if (next === null) next = page.changed_since;
    for (const item of page.items) {
      if (!state.features.has(item.id)) continue;
      const props = state.features.get(item.id).properties;
      props.level = item.level; props.online = item.online; props.failure = item.failure;
      recolour(item.id);
    }
    state.liveChanged = (state.liveChanged || 0) + page.items.length;
    cursor = page.next_cursor;
  } while (cursor);
  state.changedSince = next;
  state.liveTicks = (state.liveTicks || 0) + 1;
  state.map.triggerRepaint();
}

async function focusLuminaire(id) {
  const f = state.features.get(id);
  if (f) state.map.jumpTo({ center: f.geometry.coordinates, zoom: 17 });
  await openPanel(id);
}

async function openPanel(id) {
  const panel = $("panel");
  panel.hidden = false;
  fill(panel, "Loading…");
  const [lum, live] = await Promise.all([api(`/luminaires/${id}`), api(`/live/${id}`)]);
  const faults = (await all(`/faults?state=open&controller=${encodeURIComponent(lum.controller_id)}`))
    .filter((f) => f.luminaire_idx === lum.idx || f.luminaire_idx === null);
  const commandBox = may(FIELD) ? levelForm({ luminaire: id }) : null;
  fill(panel,
    h("button", { type: "button", onclick: () => { panel.hidden = true; } }, "Close"),
    h("h2", {}, `Luminaire ${lum.id}`),
    h("a", { href: `#/luminaire/${lum.id}`, id: "panel-page" }, "Its page"),
    h("p", { id: "panel-status" }, `Now: ${statusOf({ id, online: live.online, level: live.level })}`),
    h("h3", {}, "Live"),
    details([["level", live.level === null ? null : `${live.level} / 254`],
      ["power", live.power_w === null ? null : `${live.power_w} W`], ["voltage", live.voltage_v && `${live.voltage_v} V`],
      ["driver", live.driver_temp_c && `${live.driver_temp_c} °C`], ["reading at", when(live.time)],
      ["controller online", live.online ? "yes" : "no"], ["last seen", when(live.last_seen)]]),
    h("h3", {}, "Inventory"),
    details([["controller", lum.controller_id], ["output", lum.idx], ["model", lum.model], ["GTIN", lum.gtin],
      ["serial", lum.serial], ["rated power", lum.rated_power_w && `${lum.rated_power_w} W`],
      ["road class", lum.road_class], ["installed", when(lum.installed_at)]]),
    h("h3", {}, `Open faults (${faults.length})`),
    h("ul", { id: "panel-faults" }, faults.map((f) => h("li", {},
      h("a", { href: `#/faults?id=${f.id}` }, `${f.kind} (${f.severity})`), `: ${f.cause}`))),
    commandBox);
}

// ------------------------------------------------------------------ faults

async function loadFaults(event, { detail = true } = {}) {
  if (event) event.preventDefault();
  const form = new FormData($("fault-filters"));
  const q = new URLSearchParams();
  if (form.get("state")) q.set("state", form.get("state"));
  if (form.get("kind")) q.set("kind", form.get("kind").trim());
  const faults = await all(`/faults?${q}`, 500);
  const body = $("fault-table").querySelector("tbody");
  fill(body, faults.map((f) => h("tr", { class: "clickable", dataset: { fault: f.id },
    onclick: () => showFault(f.id).catch(report) },
  h("td", {}, when(f.raised_at)), h("td", {}, f.kind), h("td", {}, f.severity),
  h("td", { class: "fault-state" }, f.state),
  h("td", {}, f.controller_id ? `${f.controller_id}${f.luminaire_idx === null ? "" : ` #${f.luminaire_idx}`}` : f.cabinet_id),
  h("td", {}, f.cause), h("td", {}, f.assigned_to ?? "—"),
  h("td", {}, h("button", { type: "button", onclick: (e) => { e.stopPropagation(); showOnMap(f).catch(report); } },
    "Map")))));
  if (!faults.length) fill(body, h("tr", {}, h("td", { colspan: 8 }, "No fault matches.")));
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("id");
  if (wanted && detail) await showFault(Number(wanted));
}

async function showOnMap(fault) {
  if (!state.mapReady) { location.hash = "#/map"; await waitFor(() => state.mapReady); }
  const id = state.byDevice.get(`${fault.controller_id}/${fault.luminaire_idx ?? 0}`);
  if (id === undefined) { say("This fault's luminaire has no position on the map."); return; }
  location.hash = `#/map?l=${id}`;
}

function waitFor(check) {
  return new Promise((resolve) => {
    const id = setInterval(() => { if (check()) { clearInterval(id); resolve(); } }, 100);
  });
}

async function faultAction(id, path, body, done) {
  try {
    await api(`/faults/${id}/${path}`, { method: "POST", body });
    say(done, "info");
    await loadFaults(null, { detail: false });
    await showFault(id);
  } catch (err) { report(err); }
}

async function showFault(id) {
  const f = await api(`/faults/${id}`);
  const box = $("fault-detail");
  box.hidden = false;
  const comment = h("input", { name: "comment", placeholder: "comment", maxlength: 2000 });
  const assignee = h("input", { name: "assignee", type: "number", min: 1, placeholder: "user id" });
  fill(box,
    h("h2", {}, `Fault ${f.id}: ${f.kind}`),
    h("p", { class: "cause" }, f.cause),
    details([["state", f.state], ["severity", f.severity], ["raised", when(f.raised_at)],
      ["acknowledged", when(f.acknowledged_at)], ["cleared", when(f.cleared_at)], ["assigned to", f.assigned_to],
      ["last evidence", when(f.last_evidence_at)]]),
    h("div", { class: "actions" },
      may(FIELD) && f.state === "open" && h("button", { type: "button", id: "acknowledge",
        onclick: () => faultAction(id, "acknowledge", { text: "" }, "Acknowledged.") }, "Acknowledge"),
      may(OPERATE) && [assignee, h("button", { type: "button", id: "assign", onclick: () =>
        faultAction(id, "assign", { user_id: assignee.value ? Number(assignee.value) : null }, "Assigned.") }, "Assign"),
      h("button", { type: "button", onclick: () =>
        faultAction(id, "assign", { user_id: state.me.user_id }, "Assigned to you.") }, "Assign to me")],
      may(FIELD) && [comment, h("button", { type: "button", id: "add-comment", onclick: () =>
        comment.value.trim() && faultAction(id, "comments", { text: comment.value }, "Comment added.") }, "Comment")]),
    h("h3", {}, "History"),
    h("ul", { id: "fault-history" }, f.history.map((e) => h("li", {},
      `${when(e.at)} · ${e.action}${e.user_id ? ` by user ${e.user_id}` : ""}${e.text ? ": " : ""}`, e.text))));
}

// ------------------------------------------------------------------ commands

function levelForm(target) {
  const level = h("input", { type: "number", min: 0, max: 254, value: 127, name: "level" });
  const minutes = h("input", { type: "number", min: 1, max: 10080, value: 60, name: "expires" });
  return h("form", { class: "panel-command", onsubmit: (e) => {
    e.preventDefault();
    send(target, { type: "set_level", level: Number(level.value) }, Number(minutes.value)).catch(report);
  } }, h("h3", {}, "Command"), h("label", {}, "Level (0–254)", level),
  h("label", {}, "Expires in (minutes)", minutes), h("button", { type: "submit" }, "Set level"));
}

async function loadCommands() {
  const form = $("command-form");
  if (may(FIELD) && !form.group.options.length) {
    const groups = await api("/groups");
    fill(form.group, (groups.items || groups).map((g) => h("option", { value: g.id }, `${g.name} (${g.id})`)));
  }
  const batches = await api("/commands?limit=20");
  fill($("command-list"), batches.items.map((b) => h("li", {},
    h("a", { href: "#/commands", onclick: (e) => { e.preventDefault(); watch(b.id).catch(report); } },
      `${when(b.issued_at)}: ${describe(b.body)} → ${describeTarget(b.target)}, ${b.devices} device(s)`))));
  if (!batches.items.length) fill($("command-list"), h("li", {}, "No command yet."));
}

function describe(body) {
  if (body.type === "set_level") return `set level ${body.level}`;
  return body.type || "command";
}

function describeTarget(t) {
  if (t.group) return `group ${t.group}`;
  if (t.luminaire) return `luminaire ${t.luminaire}`;
  if (t.list) return `${t.list.count} selected luminaire(s)`;
  if (t.tenant) return "every luminaire";
  return "?";
}

async function sendFromForm(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const target = form.get("kind") === "group" ? { group: Number(form.get("group")) }
    : { luminaire: Number(form.get("luminaire")) };
  const action = form.get("action") === "identify" ? { type: "identify" }
    : { type: "set_level", level: Number(form.get("level")) };
  await send(target, action, Number(form.get("expires"))).catch(report);
}

async function send(target, action, minutes) {
  const issued = await api("/commands", { method: "POST",
    body: { target, action, expires_in_s: Math.max(10, Math.round(minutes * 60)) } });
  if (!location.hash.startsWith("#/commands")) {
    location.hash = "#/commands";
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page switch first
  }
  say(`Command sent to ${issued.devices} device(s).`, "info");
  await watch(issued.id);
}

let watching = null;
async function watch(batchId) {
  if (watching) { stop(watching); watching = null; }
  const box = $("command-progress");
  box.hidden = false;
  const tick = async () => {
    const p = await api(`/commands/${batchId}`);
    const devices = p.devices || p.not_done;
    fill(box,
      h("h2", {}, `${describe(p.body)} → ${describeTarget(p.target)}`),
      h("p", { id: "command-summary" }, p.summary),
      h("progress", { max: p.total, value: p.counts.done + p.counts.failed + p.counts.expired }),
      h("p", {}, Object.entries(p.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(" · ")),
      h("p", {}, `Expires ${when(p.expires_at)}`),
      h("table", { id: "command-devices" }, h("thead", {}, h("tr", {}, h("th", {}, "Controller"),
        h("th", {}, "Luminaire"), h("th", {}, "Status"), h("th", {}, "Reason"))),
      h("tbody", {}, devices.map((d) => h("tr", { dataset: { controller: d.controller_id } },
        h("td", {}, d.controller_id), h("td", {}, d.luminaire_id ?? "all"),
        h("td", { class: `status status-${d.status}` }, d.status), h("td", {}, d.reason ?? ""))))),
      p.devices ? null : h("p", {}, "More than 100 devices: only those that failed or expired are listed."));
    const pending = p.counts.created + p.counts.sent + p.counts.accepted;
    if (!pending && watching) { stop(watching); watching = null; }
  };
  await tick();
  watching = every(PROGRESS_EVERY_MS, tick);
}

// ------------------------------------------------------------------ start

whenUnauthorized(() => {
  token.clear();
  state.me = null;
  say("Your session has ended: please log in again.");
  show("login");
});
$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("fault-filters").addEventListener("submit", (e) => loadFaults(e).catch(report));
$("command-form").addEventListener("submit", sendFromForm);
initSchedules({ state, say, report, may, watch });
window.addEventListener("hashchange", route);
if (token.get()) start(); else show("login");
