// Selection on the map: a lasso (a freehand polygon drawn with the pointer) or a group selects
// luminaires; the selection is ringed on the map and listed (count, first ids) in a panel whose
// command form sends to the selection (a list target, at most 10,000 luminaires) or to the group
// (a group target). A viewer sees the selection without the command form.
import { api } from "./api.js";
import { h, fill } from "./dom.js";
import { toMercator, mercatorX, mercatorY, pointsInPolygon, thin } from "./lasso.js";

export const MAX_SELECTION = 10000; // the commands API's bound on a list target
const SHOWN_IDS = 8;
const SVG = "http://www.w3.org/2000/svg";

export class Selection {
  // ids, lons, lats: the map's located luminaires (arrays of one length)
  constructor({ map, ids, lons, lats, mayCommand, send, report }) {
    this.map = map;
    this.ids = ids;
    this.index = new Map(Array.from(ids, (id, i) => [id, i]));
    this.lons = lons;
    this.lats = lats;
    const { xs, ys } = toMercator(lons, lats);
    this.xs = xs; this.ys = ys;
    this.mayCommand = mayCommand;
    this.send = send;
    this.report = report;
    this.selected = [];
    this.group = null; // {id, name, members} when a group was selected
    this.lastLassoMs = null;
    this.box = document.getElementById("selection");
    this.box.hidden = false;
    map.addSource("selection", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "selection", type: "circle", source: "selection", paint: {
      "circle-radius": 9, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#0077b6",
      "circle-stroke-width": 3 } });
    this.overlay = this.makeOverlay();
    this.groups = [];
    this.render();
    api("/groups").then((groups) => { this.groups = groups.items || groups; this.render(); })
      .catch(report);
  }

  makeOverlay() {
    const svg = document.createElementNS(SVG, "svg");
    svg.id = "lasso-overlay";
    svg.setAttribute("hidden", ""); // an SVG element has no `hidden` property: the attribute
    const line = document.createElementNS(SVG, "polyline");
    svg.append(line);
    this.map.getContainer().append(svg);
    let drawn = null;
    const at = (e) => {
      const r = svg.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    const show = () => line.setAttribute("points", drawn.map((p) => p.join(",")).join(" "));
    svg.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      svg.setPointerCapture?.(e.pointerId);
      drawn = [at(e)];
      show();
    });
    svg.addEventListener("pointermove", (e) => {
      if (!drawn) return;
      drawn.push(at(e));
      show();
    });
    const end = () => {
      if (!drawn) return;
      const polygon = drawn;
      drawn = null;
      line.setAttribute("points", "");
      this.setLasso(false);
      this.selectScreenPolygon(polygon);
    };
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", () => { drawn = null; line.setAttribute("points", ""); });
    return svg;
  }

  setLasso(on) {
    this.lassoOn = on;
    this.overlay.toggleAttribute("hidden", !on);
    if (on) this.map.dragPan.disable(); else this.map.dragPan.enable();
    this.render();
  }

  // Select the luminaires inside a polygon of screen points ([[x, y], ...], map container pixels).
  selectScreenPolygon(points) {
    const vertices = thin(points);
    if (vertices.length < 3) return [];
    const polygon = new Float64Array(2 * vertices.length);
    vertices.forEach((p, k) => {
      const ll = this.map.unproject(p);
      polygon[2 * k] = mercatorX(ll.lng);
      polygon[2 * k + 1] = mercatorY(ll.lat);
    });
    const started = performance.now();
    const found = pointsInPolygon(this.xs, this.ys, polygon);
    this.lastLassoMs = performance.now() - started;
    this.group = null;
    this.set(Array.from(found, (i) => this.ids[i]));
    return this.selected;
  }

  async selectGroup(groupId) {
    const group = await api(`/groups/${groupId}`);
    this.group = { id: group.id, name: group.name, members: group.luminaire_ids.length };
    this.set(group.luminaire_ids.filter((id) => this.index.has(id)));
  }

  clear() {
    this.group = null;
    this.set([]);
  }

  set(ids) {
    this.selected = ids;
    this.ringed = ids.length <= MAX_SELECTION; // past that, rings would cost more than they show
    const features = (this.ringed ? ids : []).map((id) => {
      const i = this.index.get(id);
      return { type: "Feature", geometry: { type: "Point", coordinates: [this.lons[i], this.lats[i]] },
        properties: { id } };
    });
    this.map.getSource("selection").setData({ type: "FeatureCollection", features });
    this.render();
  }

  target() {
    if (this.group) return { group: this.group.id };
    return { luminaires: this.selected };
  }

  render() {
    const groupPick = h("select", { id: "selection-group", "aria-label": "group" },
      this.groups.map((g) => h("option", { value: g.id, selected: this.group?.id === g.id },
        `${g.name} (${g.id})`)));
    const tools = h("div", { class: "selection-tools" },
      h("button", { type: "button", id: "lasso", class: this.lassoOn ? "on" : null,
        onclick: () => this.setLasso(!this.lassoOn) }, this.lassoOn ? "Draw the lasso (Esc: cancel)" : "Lasso"),
      groupPick,
      h("button", { type: "button", id: "select-group", disabled: !this.groups.length,
        onclick: () => this.selectGroup(Number(groupPick.value)).catch(this.report) }, "Select group"));
    const n = this.selected.length;
    if (!n && !this.group) {
      fill(this.box, tools, h("p", { class: "hint" }, "Draw a lasso around luminaires, or select a group."));
      return;
    }
    const shown = this.selected.slice(0, SHOWN_IDS).join(", ") + (n > SHOWN_IDS ? ", …" : "");
    const title = this.group
      ? `Group ${this.group.name}: ${this.group.members} luminaire(s), ${n} on the map`
      : `${n} luminaire(s) selected`;
    const tooMany = !this.group && n > MAX_SELECTION;
    fill(this.box, tools,
      h("p", { id: "selection-count" }, title),
      n ? h("p", { id: "selection-ids" }, `ids: ${shown}`) : null,
      this.ringed ? null : h("p", { class: "hint" }, `More than ${MAX_SELECTION}: not ringed on the map.`),
      h("button", { type: "button", id: "selection-clear", onclick: () => this.clear() }, "Clear"),
      tooMany ? h("p", { class: "error" },
        `At most ${MAX_SELECTION} luminaires per command: draw a smaller lasso, or use a group.`) : null,
      this.mayCommand() && (n || this.group) && !tooMany ? this.commandForm() : null);
  }

  commandForm() {
    const action = h("select", { name: "action" }, h("option", { value: "set_level" }, "set level"),
      h("option", { value: "identify" }, "identify (blink)"));
    const level = h("input", { type: "number", min: 0, max: 254, value: 127, name: "level" });
    const minutes = h("input", { type: "number", min: 1, max: 10080, value: 60, name: "expires" });
    const to = this.group ? `group ${this.group.name}` : `the ${this.selected.length} selected`;
    return h("form", { id: "selection-command", onsubmit: (e) => {
      e.preventDefault();
      const body = action.value === "identify" ? { type: "identify" }
        : { type: "set_level", level: Number(level.value) };
      this.send(this.target(), body, Number(minutes.value)).catch(this.report);
    } }, h("label", {}, "Action", action), h("label", {}, "Level (0–254)", level),
    h("label", {}, "Expires in (minutes)", minutes),
    h("button", { type: "submit", id: "send-selection" }, `Send to ${to}`));
  }
}

export function initSelection(options) {
  const selection = new Selection(options);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && selection.lassoOn) selection.setLasso(false);
  });
  return selection;
}

// Point-in-polygon over `n` random points in typed arrays against a 64-vertex star: how long the
// lasso's test takes at that size (best of `runs`; for the browser test and the curious), and,
// beside it, one pass over the same arrays with the bounding box only (what reading them costs at
// least, the ceiling).
export function benchLasso(n = 100000, runs = 20) {
  const xs = new Float64Array(n); const ys = new Float64Array(n);
  let seed = 12345;
  const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let i = 0; i < n; i++) { xs[i] = 0.5 + rand() * 0.01; ys[i] = 0.3 + rand() * 0.01; }
  const m = 64; const polygon = new Float64Array(2 * m);
  for (let k = 0; k < m; k++) {
    const r = (k % 2 ? 0.0045 : 0.0025); const a = (2 * Math.PI * k) / m;
    polygon[2 * k] = 0.505 + r * Math.cos(a); polygon[2 * k + 1] = 0.305 + r * Math.sin(a);
  }
  let best = Infinity; let inside = 0;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    inside = pointsInPolygon(xs, ys, polygon).length;
    best = Math.min(best, performance.now() - t);
  }
  let floor = Infinity; let boxed = 0;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    boxed = 0;
    for (let i = 0; i < n; i++) if (xs[i] >= 0.5005 && xs[i] <= 0.5095 && ys[i] >= 0.3005 && ys[i] <= 0.3095) boxed++;
    floor = Math.min(floor, performance.now() - t);
  }
  return { points: n, vertices: m, inside, best_ms: best, bbox_pass_ms: floor, boxed };
}
