// The energy page (#/energy): consumption against the baseline, and the savings, of the
// municipality, a group or a supply point over a period, in kWh, euros or kg CO2e; a uPlot chart
// (bars per bucket, the baseline as steps, the savings as a line) and a table. Buckets holding
// estimated intervals are drawn hatched and lighter and marked in the table. The grid operator
// sees every supply point it serves and their settlement files, and nothing else.
import { api, all, token, ApiError } from "./api.js";
import { h, fill } from "./dom.js";
import { now as clockNow } from "./clock.js";

const UNITS = {
  kwh: { label: "kWh", digits: 3, used: (r) => r.energy_wh / 1000,
    saved: (r) => (r.savings_wh == null ? null : r.savings_wh / 1000) },
  eur: { label: "€", digits: 2, used: (r) => r.cost_eur, saved: (r) => r.savings_eur },
  co2: { label: "kg CO₂e", digits: 3, used: (r) => r.co2_kg, saved: (r) => r.savings_co2_kg },
};
const DAY_MS = 86_400_000;
// loading: the report asked for last; shown: the one drawn
const page = { me: null, built: false, plot: null, report: null, unit: "kwh", loading: null, shown: null };
window.lucioleEnergy = page; // for the browser tests

const $ = (id) => document.getElementById(id);

// The grid operator has no tenant and no /me: it is recognised by the one list it may read.
export async function gridIdentity() {
  try {
    await api("/grid/supply-points?limit=1");
    return { user_id: null, tenant: null, role: "grid_operator" };
  } catch {
    return null;
  }
}

const isGrid = () => page.me && page.me.role === "grid_operator";

function figure(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${value.toFixed(UNITS[unit].digits)} ${UNITS[unit].label}`;
}

function localDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// [from, to) of the chosen period, as Date objects (local midnights for days), on the API's clock.
function span() {
  const form = $("energy-form");
  const now = clockNow();
  const choice = form.period.value;
  if (choice === "night") { // the 24 hours up to the last local noon: the night in the middle
    const noon = new Date(now.getFullYear(), now.getMonth(), now.getDate(), 12);
    if (noon > now) noon.setDate(noon.getDate() - 1);
    return [new Date(noon.getTime() - DAY_MS), noon];
  }
  if (choice === "7d" || choice === "30d") {
    return [new Date(now.getTime() - (choice === "7d" ? 7 : 30) * DAY_MS), now];
  }
  const [y0, m0, d0] = form.from.value.split("-").map(Number);
  const [y1, m1, d1] = form.to.value.split("-").map(Number);
  return [new Date(y0, m0 - 1, d0), new Date(y1, m1 - 1, d1 + 1)];
}

function reportPath(scope, from, to) {
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  if (scope === "m") return `/energy/municipality?${q}`;
  const [kind, id] = [scope.slice(0, 1), scope.slice(2)];
  if (kind === "g") return `/energy/groups/${encodeURIComponent(id)}?${q}`;
  if (isGrid()) return `/grid/supply-points/${encodeURIComponent(id)}/energy?${q}`;
  return `/energy/supply-points/${encodeURIComponent(id)}?${q}`;
}

function build() {
  const today = localDate(clockNow());
  const weekAgo = localDate(new Date(clockNow().getTime() - 7 * DAY_MS));
  const form = h("form", { id: "energy-form", class: "filters" },
    h("label", {}, "Of", h("select", { name: "scope", id: "energy-scope" })),
    h("label", {}, "Period", h("select", { name: "period", id: "energy-period" },
      h("option", { value: "night" }, "last night"), h("option", { value: "7d" }, "7 days"),
      h("option", { value: "30d" }, "30 days"), h("option", { value: "custom" }, "custom"))),
    h("label", { class: "energy-custom" }, "From", h("input", { type: "date", name: "from", value: weekAgo })),
    h("label", { class: "energy-custom" }, "To (included)", h("input", { type: "date", name: "to", value: today })),
    h("fieldset", { id: "energy-unit" }, h("legend", {}, "Unit"),
      Object.entries(UNITS).map(([key, u]) => h("label", { class: "unit" },
        h("input", { type: "radio", name: "unit", value: key, checked: key === page.unit }), u.label))),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => { e.preventDefault(); load().catch(failed); });
  form.period.addEventListener("change", () => { customShown(); load().catch(failed); });
  form.scope.addEventListener("change", () => load().catch(failed));
  for (const radio of form.querySelectorAll("input[name=unit]")) {
    radio.addEventListener("change", () => { page.unit = radio.value; draw(); });
  }
  fill($("page-energy"),
    form,
    h("p", { id: "energy-error", class: "error", role: "alert" }),
    h("div", { id: "energy-summary" }),
    h("div", { id: "energy-chart" }),
    h("p", { class: "energy-note" }, "Hatched, lighter bars hold estimated intervals (gaps in the readings "
      + "filled by the energy accounting); the baseline is full power from dusk to dawn or the "
      + "municipality's previous regime."),
    h("table", { id: "energy-table" }),
    h("section", { id: "settlement", hidden: !isGrid() }, h("h2", {}, "Settlement files"),
      h("table", { id: "settlement-files" })));
  customShown();
  page.built = true;
}

function customShown() {
  const custom = $("energy-form").period.value === "custom";
  for (const el of document.querySelectorAll(".energy-custom")) el.hidden = !custom;
}

function failed(err) {
  fill($("energy-error"), err instanceof ApiError ? err.message : `Something went wrong: ${err.message}`);
}

async function scopes() {
  const select = $("energy-form").scope;
  if (isGrid()) {
    const points = await all("/grid/supply-points");
    fill(select, points.map((p) => h("option", { value: `s:${p.ean}` }, `${p.name} · ${p.ean} (${p.tenant})`)));
    return;
  }
  const [groups, points] = await Promise.all([api("/groups"), api("/supply-points")]);
  fill(select, h("option", { value: "m" }, `Municipality (${page.me.tenant})`),
    h("optgroup", { label: "Groups" }, (groups.items || groups).map((g) => h("option", { value: `g:${g.id}` }, g.name))),
    h("optgroup", { label: "Supply points" }, (points.items || points).map((p) =>
      h("option", { value: `s:${p.ean}` }, `${p.name || "supply point"} · ${p.ean}`))));
}

export async function openEnergy(me) {
  page.me = me;
  if (!page.built) {
    build();
    await scopes();
  }
  await load();
}

async function load() {
  fill($("energy-error"));
  const form = $("energy-form");
  const [from, to] = span();
  const path = reportPath(form.scope.value, from, to);
  page.loading = path;
  const report = await api(path);
  if (page.loading !== path) return; // a newer request went out meanwhile
  page.report = report;
  page.shown = path;
  draw();
  if (isGrid()) await settlementFiles(form.scope.value.slice(2));
  page.loaded = (page.loaded || 0) + 1;
}

function draw() {
  const r = page.report;
  if (!r) return;
  const unit = UNITS[page.unit];
  const used = unit.used(r);
  const saved = unit.saved(r);
  const base = used === null || saved === null ? null : used + saved;
  const estimated = r.estimated_intervals ?? r.intervals.filter((b) => b.estimated).length;
  const measured = r.measured_intervals;
  fill($("energy-summary"),
    h("p", { id: "energy-total" }, `Consumption: ${figure(used, page.unit)}`),
    h("p", { id: "energy-baseline" }, `Baseline (${(r.baseline_regime || "").replaceAll("_", " ")}): ${figure(base, page.unit)}`),
    h("p", { id: "energy-savings" }, `Savings: ${figure(saved, page.unit)}`,
      r.savings_ratio == null ? "" : ` (${(100 * r.savings_ratio).toFixed(1)} %)`),
    h("p", { id: "energy-quality" }, measured == null ? `${estimated} bucket(s) estimated`
      : `${measured} measured and ${estimated} estimated luminaire intervals`,
    ` · buckets of ${r.interval}`),
    used === null ? h("p", { class: "error" }, "No tariff or emission factor is set for part of this period.") : null);
  chart(r, unit);
  table(r, unit);
}

function hatch() {
  const c = document.createElement("canvas");
  c.width = 8; c.height = 8;
  const g = c.getContext("2d");
  g.fillStyle = "#9cc3e0";
  g.fillRect(0, 0, 8, 8);
  g.strokeStyle = "#1d6fa5";
  g.lineWidth = 1.5;
  g.beginPath(); g.moveTo(0, 8); g.lineTo(8, 0); g.stroke();
  return g.createPattern(c, "repeat");
}

function chart(r, unit) {
  const box = $("energy-chart");
  if (page.plot) { page.plot.destroy(); page.plot = null; }
  fill(box);
  if (!r.intervals.length) { fill(box, h("p", {}, "No energy booked over this period.")); return; }
  const xs = r.intervals.map((b) => Date.parse(b.start) / 1000);
  const used = r.intervals.map((b) => unit.used(b));
  const saved = r.intervals.map((b) => unit.saved(b));
  const measuredBars = r.intervals.map((b, i) => (b.estimated ? null : used[i]));
  const estimatedBars = r.intervals.map((b, i) => (b.estimated ? used[i] : null));
  const base = r.intervals.map((b, i) => (used[i] === null || saved[i] === null ? null : used[i] + saved[i]));
  const bars = uPlot.paths.bars({ size: [0.8, 60], align: 1 });
  const pattern = hatch();
  page.plot = new uPlot({
    width: Math.max(320, (box.clientWidth || 800) - 24), height: 300,
    scales: { x: { time: true } },
    axes: [{}, { label: unit.label, size: 70 }],
    series: [
      {},
      { label: "consumption (measured)", stroke: "#1d6fa5", fill: "#1d6fa5cc", paths: bars, points: { show: false } },
      { label: "estimated", stroke: "#1d6fa5", fill: () => pattern, paths: bars, points: { show: false } },
      { label: "baseline", stroke: "#555", dash: [6, 4], width: 2, paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false } },
      { label: "savings", stroke: "#2a9d48", width: 2 },
    ],
  }, [xs, measuredBars, estimatedBars, base, saved], box);
}

function table(r, unit) {
  const cell = (v) => h("td", { class: "num" }, v === null || v === undefined ? "—" : v.toFixed(unit.digits));
  fill($("energy-table"),
    h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", {}, `Consumption (${unit.label})`),
      h("th", {}, `Baseline (${unit.label})`), h("th", {}, `Savings (${unit.label})`), h("th", {}, "Data"))),
    h("tbody", {}, r.intervals.map((b) => {
      const used = unit.used(b);
      const saved = unit.saved(b);
      return h("tr", { class: b.estimated ? "estimated" : null, dataset: { estimated: b.estimated } },
        h("td", {}, new Date(b.start).toLocaleString()), cell(used),
        cell(used === null || saved === null ? null : used + saved), cell(saved),
        h("td", {}, b.estimated ? h("span", { class: "estimated-mark", title: "holds estimated intervals" },
          `estimated (${b.estimated_intervals ?? "?"} of ${(b.measured_intervals ?? 0) + (b.estimated_intervals ?? 0)})`)
          : "measured"));
    })));
}

async function settlementFiles(ean) {
  const files = await all(`/grid/settlement-files?ean=${encodeURIComponent(ean)}&status=current`);
  files.sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : a.kind.localeCompare(b.kind)));
  fill($("settlement-files"),
    h("thead", {}, h("tr", {}, h("th", {}, "Day"), h("th", {}, "File"), h("th", {}, "Version"),
      h("th", {}, "Rows"), h("th", {}, "SHA-256"), h("th", {}))),
    h("tbody", {}, files.length ? files.map((f) => h("tr", { dataset: { file: f.id } },
      h("td", {}, f.day), h("td", {}, f.kind), h("td", {}, f.version), h("td", {}, f.rows),
      h("td", { class: "sha" }, f.sha256.slice(0, 12)),
      h("td", {}, h("a", { href: f.url, class: "download", onclick: (e) => {
        e.preventDefault(); download(f).catch(failed);
      } }, `Download ${f.filename}`))))
      : h("tr", {}, h("td", { colspan: 6 }, "No settlement file for this supply point yet."))));
}

// The file through the API with the bearer token, saved under its own name.
async function download(file, { save = true } = {}) {
  const response = await fetch(file.url, { headers: { Authorization: `Bearer ${token.get()}` } });
  if (!response.ok) throw new ApiError(response.status, `The download was refused (${response.status}).`);
  const blob = await response.blob();
  if (save) {
    const link = h("a", { href: URL.createObjectURL(blob), download: file.filename });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
  return blob;
}
page.download = download;
