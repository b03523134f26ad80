// The schedule editor (#/schedules) and the pages of one luminaire (#/luminaire/123) and one
// controller (#/controller/abc). Curves are drawn with uPlot (vendored, global `uPlot`); a night's
// level and power come from POST /schedules/preview, computed by the controllers' own schedule code.
import { api, all } from "./api.js";
import { h, fill, when, details } from "./dom.js";
import { now as clockNow } from "./clock.js";

const ENERGY = new Set(["admin", "energy_manager"]); // edit, save, assign, ask the optimiser
const PUSH = new Set(["admin", "energy_manager", "operator"]); // push to the controllers
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const $ = (id) => document.getElementById(id);

let ctx = null; // { state, say, report, may, watch } from app.js
export function initSchedules(context) { ctx = context; }

// DALI arc level <-> light % on the logarithmic curve of IEC 62386-102 (254 is 100 %).
export const pctOfArc = (arc) => (arc <= 0 ? 0 : 10 ** ((arc - 1) / (253 / 3) - 1));
export function arcOfPct(pct) {
  if (!(pct > 0)) return 0;
  return Math.min(254, Math.max(1, Math.ceil(1 + (253 / 3) * (Math.log10(Math.min(pct, 100)) + 1) - 1e-9)));
}

const ed = { id: null, name: "", body: null, proposal: null, charts: [] };
window.lucioleSchedules = ed; // for the browser tests

function blankCalendar() {
  return { timezone: "Europe/Brussels",
    programs: { night: { steps: [{ anchor: "sunset", offset_min: 0, level: 254 },
      { anchor: "clock", at: "23:00", level: 170 }, { anchor: "sunrise", offset_min: 0, level: 0 }] } },
    week: Array(7).fill("night"), special_days: [] };
}

function asCalendar(body) {
  if (body.programs) return JSON.parse(JSON.stringify(body));
  return { timezone: body.timezone || "Europe/Brussels", clo: !!body.clo,
    programs: { nightly: { steps: body.steps, presence: body.presence || null } },
    week: Array(7).fill("nightly"), special_days: [] };
}

// ------------------------------------------------------------------ the list

const REFRESH_MS = 7000; // while the page is open, as the map's live state
let refresher = null;

// The list (each schedule with its groups and latest push) and the optimiser's stored proposals;
// refreshed every few seconds while the page is shown, leaving the editor (and an edit) alone.
export async function loadSchedules() {
  const mayEdit = ctx.may(ENERGY);
  const list = await refreshLists();
  fill($("schedule-tools"), mayEdit && h("button", { type: "button", id: "new-calendar",
    onclick: () => edit({ id: null, name: "", body: blankCalendar() }) }, "New calendar"));
  if (!ed.body) edit(list.length ? newest(list) : { id: null, name: "", body: blankCalendar() });
  else render();
  if (!refresher) {
    refresher = setInterval(() => {
      if ($("page-schedules").hidden || !ctx.state.me) { clearInterval(refresher); refresher = null; return; }
      refreshLists().catch(ctx.report);
    }, REFRESH_MS);
  }
}

// The schedule created last (the one most likely running now).
const newest = (list) => list.reduce((a, b) => (Date.parse(b.created_at) > Date.parse(a.created_at) ? b : a));

function pushLine(p, groupName) {
  const n = p.counts;
  const pending = n.created + n.sent + n.accepted;
  return h("span", { class: "push", dataset: { done: n.done, failed: n.failed, expired: n.expired, total: p.total, batch: p.id } },
    ` · pushed ${when(p.issued_at)} to ${groupName(p.group_id)}: ${n.done} of ${p.total} done`,
    n.failed ? `, ${n.failed} failed` : "", n.expired ? `, ${n.expired} expired` : "",
    pending ? `, ${pending} on the way` : "");
}

function proposalLine(p, groupName) {
  const pct = p.baseline_energy_wh ? (100 * p.savings_wh) / p.baseline_energy_wh : 0;
  return h("li", { dataset: { proposal: p.id, group: p.group_id } },
    `${when(p.created_at)} · ${groupName(p.group_id)}, nights ${p.first_night} to ${p.last_night}: `
    + `predicted ${kwh(p.predicted_energy_wh)}, ${kwh(p.savings_wh)} saved (${pct.toFixed(0)} % against full light) `,
    ctx.may(ENERGY) && h("button", { type: "button", class: "open-proposal", onclick: () => {
      edit({ id: null, name: `optimised ${groupName(p.group_id)} from ${p.first_night}`, body: p.body });
      ed.groupId = String(p.group_id);
      render();
    } }, "Open in the editor"));
}

async function refreshLists() {
  const [list, groups, proposals] = await Promise.all([api("/schedules"), api("/groups"),
    api("/schedules/proposals?limit=10")]);
  ed.groups = groups.items || groups;
  const names = new Map(ed.groups.map((g) => [g.id, g.name]));
  const groupName = (id) => (names.has(id) ? `${names.get(id)} (${id})` : `group ${id}`);
  fill($("schedule-list"), list.length ? list.map((s) => h("li", { dataset: { schedule: s.id } },
    h("a", { href: "#/schedules", onclick: (e) => { e.preventDefault(); edit(s); } }, `${s.name} v${s.version}`),
    s.group_ids.length ? ` · assigned to ${s.group_ids.map(groupName).join(", ")}` : " · not assigned",
    s.last_push ? pushLine(s.last_push, groupName) : " · never pushed")) : h("li", {}, "No schedule yet."));
  fill($("schedule-proposals"), proposals.length ? proposals.map((p) => proposalLine(p, groupName))
    : h("li", {}, "No proposal yet: the optimiser proposes for each group whose lighting is described."));
  ed.refreshes = (ed.refreshes || 0) + 1;
  return list;
}

function edit(schedule) {
  ed.id = schedule.id;
  ed.name = schedule.name;
  ed.body = asCalendar(schedule.body);
  ed.proposal = null;
  render();
}

// ------------------------------------------------------------------ the editor

function input(attrs, onchange) {
  const el = h("input", attrs);
  el.addEventListener("change", () => onchange(el));
  return el;
}

function select(options, value, onchange, attrs = {}) {
  const el = h("select", attrs, options.map((o) => h("option", { value: o, selected: o === value }, o)));
  el.addEventListener("change", () => onchange(el.value));
  return el;
}

function stepRow(steps, i, ro) {
  const s = steps[i];
  const anchor = select(["sunset", "sunrise", "clock"], s.anchor, (v) => {
    s.anchor = v;
    if (v === "clock") { delete s.offset_min; s.at = s.at || "23:00"; } else { delete s.at; s.offset_min = s.offset_min || 0; }
    render();
  }, { name: "anchor", disabled: ro });
  const when_ = s.anchor === "clock"
    ? input({ type: "time", name: "at", value: (s.at || "").slice(0, 5), disabled: ro }, (el) => { s.at = el.value; })
    : input({ type: "number", name: "offset_min", min: -720, max: 720, value: s.offset_min || 0, disabled: ro },
      (el) => { s.offset_min = Number(el.value); });
  const pct = input({ type: "number", name: "level_pct", min: 0, max: 100, step: 0.1,
    value: pctOfArc(s.level).toFixed(1), disabled: ro }, (el) => { s.level = arcOfPct(Number(el.value)); render(); });
  return h("tr", { class: "step" }, h("td", {}, anchor), h("td", {}, when_), h("td", {}, pct, " %"),
    h("td", { class: "arc" }, `arc ${s.level}`),
    h("td", {}, !ro && h("button", { type: "button", onclick: () => { steps.splice(i, 1); render(); } }, "✕")));
}

function programBox(name, program, ro) {
  return h("fieldset", { class: "program", dataset: { program: name } }, h("legend", {}, `Program ${name}`),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", {}, "Offset (min) / local time"),
      h("th", {}, "Light"), h("th", {}, "Sent as"), h("th", {}))),
    h("tbody", {}, program.steps.map((_, i) => stepRow(program.steps, i, ro)))),
    !ro && h("button", { type: "button", class: "add-step", onclick: () => {
      program.steps.push({ anchor: "clock", at: "01:00", level: 127 }); render(); } }, "Add step"),
    !ro && Object.keys(ed.body.programs).length > 1 && h("button", { type: "button", onclick: () => {
      delete ed.body.programs[name]; render(); } }, "Remove program"));
}

function specialRow(day, i, names, ro) {
  return h("tr", { class: "special" },
    h("td", {}, input({ name: "special_name", value: day.name, maxlength: 64, disabled: ro }, (el) => { day.name = el.value; })),
    h("td", {}, input({ type: "date", name: "special_first", value: day.first, disabled: ro }, (el) => { day.first = el.value; })),
    h("td", {}, input({ type: "date", name: "special_last", value: day.last || "", disabled: ro },
      (el) => { day.last = el.value || null; })),
    h("td", {}, input({ type: "checkbox", name: "special_yearly", checked: !!day.yearly, disabled: ro },
      (el) => { day.yearly = el.checked; })),
    h("td", {}, select(names, day.program, (v) => { day.program = v; }, { name: "special_program", disabled: ro })),
    h("td", {}, !ro && h("button", { type: "button", onclick: () => { ed.body.special_days.splice(i, 1); render(); } }, "✕")));
}

function render() {
  const ro = !ctx.may(ENERGY);
  const body = ed.body;
  const names = Object.keys(body.programs);
  const groupSelect = h("select", { id: "schedule-group", name: "group" },
    (ed.groups || []).map((g) => h("option", { value: g.id, selected: String(g.id) === ed.groupId }, `${g.name} (${g.id})`)));
  groupSelect.addEventListener("change", () => { ed.groupId = groupSelect.value; });
  if (!ed.groupId && ed.groups && ed.groups.length) ed.groupId = String(ed.groups[0].id);
  const night = h("input", { type: "date", id: "schedule-night", value: ed.night || "" });
  night.addEventListener("change", () => { ed.night = night.value; });
  const newProgram = h("input", { id: "new-program", placeholder: "new program name", pattern: "[a-z0-9][a-z0-9_-]{0,31}" });
  fill($("schedule-editor"),
    h("h2", {}, ed.id ? `Schedule ${ed.name} (id ${ed.id})` : "New calendar"),
    h("label", {}, "Name", input({ id: "schedule-name", value: ed.name, maxlength: 128, disabled: ro }, (el) => { ed.name = el.value; })),
    h("label", {}, "Time zone", input({ name: "timezone", value: body.timezone, disabled: ro }, (el) => { body.timezone = el.value; })),
    names.map((n) => programBox(n, body.programs[n], ro)),
    !ro && h("div", { class: "actions" }, newProgram, h("button", { type: "button", id: "add-program", onclick: () => {
      const n = newProgram.value.trim();
      if (n && !body.programs[n]) { body.programs[n] = { steps: [{ anchor: "sunset", level: 254 }, { anchor: "sunrise", level: 0 }] }; render(); }
    } }, "Add program")),
    h("h3", {}, "Week"),
    h("div", { class: "week" }, WEEKDAYS.map((d, i) => h("label", {}, d,
      select(names, body.week[i], (v) => { body.week[i] = v; }, { name: `week-${d}`, disabled: ro })))),
    h("h3", {}, "Special days and holidays"),
    h("table", { id: "special-days" }, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "First night"),
      h("th", {}, "Last night"), h("th", {}, "Yearly"), h("th", {}, "Program"), h("th", {}))),
    h("tbody", {}, (body.special_days || []).map((d, i) => specialRow(d, i, names, ro)))),
    !ro && h("button", { type: "button", id: "add-special", onclick: () => {
      body.special_days = body.special_days || [];
      body.special_days.push({ name: `day ${body.special_days.length + 1}`, first: clockNow().toISOString().slice(0, 10),
        last: null, yearly: false, program: names[0] });
      render();
    } }, "Add special day"),
    h("h3", {}, "Predicted night"),
    h("div", { class: "actions" }, h("label", {}, "Group", groupSelect), h("label", {}, "Night", night),
      h("button", { type: "button", id: "preview", onclick: () => preview().catch(ctx.report) }, "Show the night"),
      ctx.may(ENERGY) && h("button", { type: "button", id: "propose", onclick: () => propose().catch(ctx.report) },
        "Ask the optimiser")),
    h("div", { id: "schedule-chart" }),
    h("div", { id: "schedule-energy" }),
    h("div", { class: "actions" },
      !ro && h("button", { type: "button", id: "save-schedule", onclick: () => save().catch(ctx.report) }, "Save"),
      !ro && h("button", { type: "button", id: "assign-schedule", onclick: () => assign().catch(ctx.report) }, "Assign to the group"),
      ctx.may(PUSH) && h("button", { type: "button", id: "push-schedule", onclick: () => push().catch(ctx.report) }, "Push to the group")));
}

function cleaned(body) {
  const out = JSON.parse(JSON.stringify(body));
  for (const p of Object.values(out.programs)) { if (!p.presence) delete p.presence; }
  out.special_days = (out.special_days || []).map((d) => {
    const x = { name: d.name, first: d.first, yearly: !!d.yearly, program: d.program };
    if (d.last) x.last = d.last;
    return x;
  });
  return out;
}

// ------------------------------------------------------------------ curves

async function previewOf(body) {
  const req = { group_id: Number(ed.groupId), body: cleaned(body) };
  if (ed.night) req.night = ed.night;
  return api("/schedules/preview", { method: "POST", body: req });
}

const kwh = (wh) => `${(wh / 1000).toFixed(2)} kWh`;

function chart(el, curves, title) {
  for (const c of ed.charts) c.destroy();
  ed.charts = [];
  fill(el);
  const base = curves[0].data;
  const series = [{}, { label: "baseline (full, dusk to dawn)", stroke: "#8d99ae", dash: [4, 4] }];
  const data = [base.t, base.baseline_w];
  const colours = ["#e76f51", "#2a9d8f"];
  curves.forEach((c, i) => { series.push({ label: c.label, stroke: colours[i], width: 2 }); data.push(c.data.power_w); });
  const plot = new uPlot({ title, width: Math.min(el.clientWidth || 900, 1000), height: 260, series,
    axes: [{}, { label: "W" }], scales: { x: { time: true } } }, data, el);
  ed.charts.push(plot);
}

async function preview() {
  const current = await previewOf(ed.body);
  const curves = [{ label: ed.name || "this calendar", data: current }];
  let proposed = null;
  if (ed.proposal) {
    proposed = await previewOf(ed.proposal.body);
    curves.push({ label: "optimiser's proposal", data: proposed });
  }
  ed.preview = current;
  chart($("schedule-chart"), curves, `Night of ${current.night}: ${current.luminaires} luminaire(s), program ${current.program}`);
  const line = (label, p) => h("tr", {}, h("td", {}, label), h("td", { class: "energy" }, kwh(p.energy_wh)),
    h("td", { class: "saving" }, `${kwh(p.savings_wh)} (${(100 * p.savings_wh / (p.baseline_wh || 1)).toFixed(0)} %)`));
  fill($("schedule-energy"), h("table", { id: "energy-compare" },
    h("thead", {}, h("tr", {}, h("th", {}), h("th", {}, "Energy"), h("th", {}, "Saved against full power"))),
    h("tbody", {}, line("this calendar", current), proposed && line("optimiser's proposal", proposed),
      h("tr", {}, h("td", {}, "baseline"), h("td", {}, kwh(current.baseline_wh)), h("td", {}, "—")))),
    proposed && h("details", { id: "proposal-why" }, h("summary", {}, `Why the optimiser chose its steps (night of ${ed.proposal.nights[0].night})`),
      h("ol", {}, ed.proposal.nights[0].steps.map((s) => h("li", {}, `from ${s.from}: ${s.light_pct} % (arc ${s.level}): ${s.why}`)))),
    proposed && h("button", { type: "button", id: "use-proposal", onclick: () => {
      ed.body = asCalendar(ed.proposal.body); ed.id = null; ed.name = ed.name || "proposal";
      ed.proposal = null; render(); preview().catch(ctx.report);
    } }, "Use the proposal"));
}

async function propose() {
  const p = await api("/schedules/proposals", { method: "POST", body: { group_id: Number(ed.groupId), nights: 7 } });
  ed.proposal = p;
  ed.night = p.first_night; // a proposal is valid for its nights only: compare on its first
  render();
  ctx.say(`The optimiser proposes ${kwh(p.predicted_energy_wh)} over ${p.nights.length} nights, `
    + `${kwh(p.savings_wh)} less than full power (${p.source === "job" ? "from the nightly job" : "computed now"}).`, "info");
  await preview();
}

async function save() {
  if (!ed.name.trim()) { ctx.say("Give the schedule a name first."); return; }
  const saved = await api("/schedules", { method: "POST", body: { name: ed.name.trim(), body: cleaned(ed.body) } });
  ed.id = saved.id;
  ctx.say(`Saved ${saved.name}, version ${saved.version}.`, "info");
  await loadSchedules();
}

async function assign() {
  if (!ed.id) { ctx.say("Save the schedule first."); return; }
  await api(`/groups/${ed.groupId}/schedule`, { method: "PUT", body: { schedule_id: ed.id } });
  ctx.say(`Assigned to group ${ed.groupId}.`, "info");
  await loadSchedules();
}

async function push() {
  if (!ed.id) { ctx.say("Save and assign the schedule first."); return; }
  const issued = await api(`/schedules/${ed.id}/push`, { method: "POST", body: {} });
  if (!issued.length) { ctx.say("The schedule's groups have no luminaire to send it to."); return; }
  location.hash = "#/commands";
  await new Promise((resolve) => setTimeout(resolve, 0));
  ctx.say(`Schedule sent to ${issued.reduce((n, b) => n + b.devices, 0)} controller(s).`, "info");
  await ctx.watch(issued[0].id);
}

// ------------------------------------------------------------------ device pages

function lastNight() {
  const now = clockNow();
  const to = new Date(now); to.setHours(12, 0, 0, 0);
  if (to > now) to.setDate(to.getDate() - 1);
  const from = new Date(to); from.setDate(from.getDate() - 1);
  return [from.toISOString(), to.toISOString()];
}

async function commandsFor(match) {
  const page = await api("/commands?limit=100");
  return page.items.filter(match).slice(0, 20);
}

function commandList(batches) {
  return h("ul", { class: "device-commands" }, batches.length ? batches.map((b) => h("li", {},
    `${when(b.issued_at)}: ${b.body.type || "command"}${b.body.level !== undefined ? ` ${b.body.level}` : ""}, `
    + `${b.devices} device(s)`)) : h("li", {}, "No command."));
}

function faultList(faults) {
  return h("ul", { class: "device-faults" }, faults.length ? faults.map((f) => h("li", {},
    h("a", { href: `#/faults?id=${f.id}` }, `${f.kind} (${f.severity}, ${f.state})`), `: ${f.cause}`)) : h("li", {}, "No fault."));
}

export async function loadLuminaire(id) {
  const box = $("page-device");
  fill(box, "Loading…");
  const [from, to] = lastNight();
  const [lum, live, series] = await Promise.all([api(`/luminaires/${id}`), api(`/live/${id}`),
    api(`/luminaires/${id}/series?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`)]);
  const faults = (await all(`/faults?controller=${encodeURIComponent(lum.controller_id)}`, 200))
    .filter((f) => f.luminaire_idx === lum.idx || f.luminaire_idx === null);
  const batches = await commandsFor((b) => b.target.luminaire === lum.id);
  const chartBox = h("div", { id: "device-chart" });
  fill(box, h("h2", {}, `Luminaire ${lum.id}`),
    h("p", {}, "On controller ", h("a", { href: `#/controller/${encodeURIComponent(lum.controller_id)}` }, lum.controller_id),
      `, output ${lum.idx}`),
    h("h3", {}, "Live"),
    details([["level", live.level === null ? null : `${live.level} / 254 (${pctOfArc(live.level).toFixed(0)} %)`],
      ["power", live.power_w === null ? null : `${live.power_w} W`], ["reading at", when(live.time)],
      ["controller online", live.online ? "yes" : "no"]]),
    h("h3", {}, "Last night"), chartBox,
    h("p", { id: "device-points" }, `${series.points.length} reading(s), ${series.bucket_s} s buckets`),
    h("h3", {}, "Inventory"),
    h("div", { id: "device-inventory" }, details([["model", lum.model], ["GTIN", lum.gtin], ["serial", lum.serial],
      ["rated power", lum.rated_power_w && `${lum.rated_power_w} W`], ["road class", lum.road_class],
      ["installed", when(lum.installed_at)]])),
    h("h3", {}, `Faults (${faults.length})`), faultList(faults),
    h("h3", {}, "Commands"), commandList(batches));
  for (const c of ed.charts) c.destroy();
  ed.charts = [];
  if (series.points.length) {
    const t = series.points.map((p) => Date.parse(p.bucket) / 1000);
    ed.charts.push(new uPlot({ width: Math.min(box.clientWidth || 900, 1000), height: 240,
      series: [{}, { label: "power (W)", stroke: "#e76f51", width: 2, scale: "W" },
        { label: "level (arc)", stroke: "#2a9d8f", scale: "arc" }],
      axes: [{}, { scale: "W", label: "W" }, { scale: "arc", side: 1, label: "arc" }], scales: { x: { time: true } } },
    [t, series.points.map((p) => p.power_w), series.points.map((p) => p.level)], chartBox));
  } else fill(chartBox, "No reading last night.");
}

export async function loadController(id) {
  const box = $("page-device");
  fill(box, "Loading…");
  const [ctl, luminaires] = await Promise.all([api(`/controllers/${encodeURIComponent(id)}`),
    all(`/luminaires?controller=${encodeURIComponent(id)}`, 200)]);
  const faults = await all(`/faults?controller=${encodeURIComponent(id)}`, 200);
  const ids = new Set(luminaires.map((l) => l.id));
  const batches = await commandsFor((b) => ids.has(b.target.luminaire) || b.target.tenant || b.target.group);
  fill(box, h("h2", {}, `Controller ${ctl.id}`),
    h("div", { id: "device-inventory" }, details(Object.entries(ctl).filter(([, v]) => typeof v !== "object" || v === null)
      .map(([k, v]) => [k.replaceAll("_", " "), v === true ? "yes" : v === false ? "no" : v]))),
    h("h3", {}, `Luminaires (${luminaires.length})`),
    h("ul", {}, luminaires.map((l) => h("li", {}, h("a", { href: `#/luminaire/${l.id}` },
      `#${l.idx} ${l.model || ""}`), l.rated_power_w ? ` · ${l.rated_power_w} W` : ""))),
    h("h3", {}, `Faults (${faults.length})`), faultList(faults),
    h("h3", {}, "Commands (to its luminaires, groups or everything)"), commandList(batches));
}
