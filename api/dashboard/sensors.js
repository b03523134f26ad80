// The urban sensors layer: the tenant's multifunction poles' sensor boxes (GET /map/sensors) as
// violet diamonds, toggled from the legend (off at first: fetched when first shown), a click
// opening a popup with each quantity's latest reading.
import { api } from "./api.js";
import { h, when, details } from "./dom.js";

const ICON = "sensor-diamond";
const SIZE = 20;

// A violet diamond with a white edge, drawn into RGBA pixels (no sprite sheet needed).
function diamond() {
  const data = new Uint8Array(SIZE * SIZE * 4);
  const c = (SIZE - 1) / 2;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const d = Math.abs(x - c) + Math.abs(y - c);
      if (d > c) continue;
      const edge = d > c - 2.5;
      data.set(edge ? [255, 255, 255, 255] : [123, 44, 191, 255], 4 * (y * SIZE + x));
    }
  }
  return { width: SIZE, height: SIZE, data };
}

function label(reading) {
  const name = reading.name ? reading.name.replace(/_[a-z0-9]+$/, "").replace("_", " ") : `quantity ${reading.quantity}`;
  return [name, `${Number(reading.value.toFixed(2))} ${reading.unit ?? ""}`.trim()];
}

export class SensorLayer {
  constructor({ map, report }) {
    this.map = map;
    this.report = report;
    this.items = null; // the API's answer once fetched
  }

  async show(visible) {
    if (visible && this.items === null) await this.load();
    if (this.map.getLayer("sensors")) {
      this.map.setLayoutProperty("sensors", "visibility", visible ? "visible" : "none");
    }
    this.visible = visible;
  }

  async load() {
    const answer = await api("/map/sensors");
    this.items = answer.items;
    const located = this.items.filter((s) => s.lon !== null && s.lat !== null);
    if (!this.map.hasImage(ICON)) this.map.addImage(ICON, diamond());
    this.map.addSource("sensors", { type: "geojson", data: { type: "FeatureCollection",
      features: located.map((s, i) => ({ type: "Feature", geometry: { type: "Point", coordinates: [s.lon, s.lat] },
        properties: { i } })) } });
    this.map.addLayer({ id: "sensors", type: "symbol", source: "sensors", layout: {
      "icon-image": ICON, "icon-allow-overlap": true, "icon-ignore-placement": true } });
    this.located = located;
    this.map.on("click", "sensors", (e) => this.popup(located[e.features[0].properties.i], e.lngLat));
    this.map.on("mouseenter", "sensors", () => { this.map.getCanvas().style.cursor = "pointer"; });
    this.map.on("mouseleave", "sensors", () => { this.map.getCanvas().style.cursor = ""; });
  }

  popup(sensor, at) {
    const node = h("div", { class: "sensor-popup" },
      h("strong", {}, `Sensor ${sensor.sensor} on ${sensor.controller_id}`),
      details(sensor.readings.map(label)),
      h("small", {}, `latest ${when(sensor.latest)}`));
    this.open?.remove();
    this.open = new maplibregl.Popup({ closeButton: true, maxWidth: "18rem" })
      .setLngLat(at).setDOMContent(node).addTo(this.map);
  }
}

// The layer and its toggle in the legend.
export function initSensors({ map, report, legend }) {
  const layer = new SensorLayer({ map, report });
  legend.append(h("label", { class: "layer-toggle" }, h("input", { type: "checkbox", id: "toggle-sensors",
    onchange: (e) => layer.show(e.target.checked).catch(report) }),
  h("span", { class: "sensor-key" }), "urban sensors"));
  return layer;
}
