// The luminaires on the map: one WebGL draw call of gl.POINTS from typed arrays (a MapLibre custom
// layer), no GeoJSON tiling in a worker: 100,000 points load in one upload and pan at the frame
// rate even with a software rasteriser. Positions are relative to an origin near the points so
// 32-bit floats stay precise at street zoom; colours are a per-point RGBA buffer, rewritten for
// the points whose state changed.

const VERTEX = `
attribute vec2 a_pos;
attribute vec4 a_colour;
uniform mat4 u_matrix;
uniform float u_size;
varying vec4 v_colour;
void main() {
  gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0);
  gl_PointSize = u_size;
  v_colour = a_colour;
}`;

const FRAGMENT = `
precision mediump float;
varying vec4 v_colour;
void main() {
  vec2 c = gl_PointCoord * 2.0 - 1.0;
  float r = dot(c, c);
  if (r > 1.0) discard;
  gl_FragColor = r > 0.55 ? vec4(0.0, 0.0, 0.0, 0.45) : v_colour;
}`;

function mercator(lon, lat) {
  const x = (lon + 180) / 360;
  const y = (180 - (180 / Math.PI) * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))) / 360;
  return [x, y];
}

function hexToRgba(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255, 255];
}

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

// column-major 4x4 product a * b
function multiply(a, b) {
  const out = new Float64Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

export class PointLayer {
  // ids: luminaire ids; lons, lats: their positions; colourOf(i) -> "#rrggbb"
  constructor(id, ids, lons, lats) {
    this.id = id;
    this.type = "custom";
    this.renderingMode = "2d";
    this.ids = ids;
    this.index = new Map(ids.map((v, i) => [v, i]));
    const n = ids.length;
    this.mx = new Float64Array(n);
    this.my = new Float64Array(n);
    let sx = 0; let sy = 0;
    for (let i = 0; i < n; i++) {
      const [x, y] = mercator(lons[i], lats[i]);
      this.mx[i] = x; this.my[i] = y; sx += x; sy += y;
    }
    this.origin = n ? [sx / n, sy / n] : [0.5, 0.5];
    this.positions = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      this.positions[2 * i] = this.mx[i] - this.origin[0];
      this.positions[2 * i + 1] = this.my[i] - this.origin[1];
    }
    this.colours = new Uint8Array(4 * n);
    this.dirty = true;
  }

  setColour(id, hex) {
    const i = this.index.get(id);
    if (i === undefined) return;
    this.colours.set(hexToRgba(hex), 4 * i);
    this.dirty = true;
  }

  onAdd(map, gl) {
    this.map = map;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    this.program = program;
    this.aPos = gl.getAttribLocation(program, "a_pos");
    this.aColour = gl.getAttribLocation(program, "a_colour");
    this.uMatrix = gl.getUniformLocation(program, "u_matrix");
    this.uSize = gl.getUniformLocation(program, "u_size");
    this.posBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, this.positions, gl.STATIC_DRAW);
    this.colourBuffer = gl.createBuffer();
  }

  render(gl, matrix) {
    const m = Array.isArray(matrix) || matrix instanceof Float32Array || matrix instanceof Float64Array
      ? matrix : matrix.defaultProjectionData.mainMatrix;
    const translate = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, this.origin[0], this.origin[1], 0, 1];
    gl.useProgram(this.program);
    gl.uniformMatrix4fv(this.uMatrix, false, new Float32Array(multiply(m, translate)));
    const z = this.map.getZoom();
    const size = Math.max(3, Math.min(12, 3 + ((z - 12) * 9) / 5)) * (window.devicePixelRatio || 1);
    gl.uniform1f(this.uSize, size);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    gl.enableVertexAttribArray(this.aPos);
    gl.vertexAttribPointer(this.aPos, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colourBuffer);
    if (this.dirty) { gl.bufferData(gl.ARRAY_BUFFER, this.colours, gl.DYNAMIC_DRAW); this.dirty = false; }
    gl.enableVertexAttribArray(this.aColour);
    gl.vertexAttribPointer(this.aColour, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArrays(gl.POINTS, 0, this.ids.length);
    gl.disableVertexAttribArray(this.aPos);
    gl.disableVertexAttribArray(this.aColour);
  }

  // The id of the point drawn nearest to the screen point p (within `radius` pixels), or null.
  pick(p, radius = 8) {
    const map = this.map;
    const bounds = map.getBounds();
    let best = null; let bestD = radius * radius;
    const [west, east, south, north] = [bounds.getWest(), bounds.getEast(), bounds.getSouth(), bounds.getNorth()];
    for (let i = 0; i < this.ids.length; i++) {
      const f = this.lonLat(i);
      if (f[0] < west || f[0] > east || f[1] < south || f[1] > north) continue;
      const q = map.project(f);
      const d = (q.x - p.x) ** 2 + (q.y - p.y) ** 2;
      if (d <= bestD) { bestD = d; best = this.ids[i]; }
    }
    return best;
  }

  lonLat(i) {
    const lon = this.mx[i] * 360 - 180;
    const lat = (360 / Math.PI) * Math.atan(Math.exp(((180 - this.my[i] * 360) * Math.PI) / 180)) - 90;
    return [lon, lat];
  }

  // The ids of the points inside a screen polygon (a lasso), [[x, y], ...].
  inside(polygon) {
    const found = [];
    const xs = polygon.map((p) => p[0]); const ys = polygon.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    for (let i = 0; i < this.ids.length; i++) {
      const q = this.map.project(this.lonLat(i));
      if (q.x < x0 || q.x > x1 || q.y < y0 || q.y > y1) continue;
      let odd = false;
      for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
        const [xa, ya] = polygon[a]; const [xb, yb] = polygon[b];
        if ((ya > q.y) !== (yb > q.y) && q.x < ((xb - xa) * (q.y - ya)) / (yb - ya) + xa) odd = !odd;
      }
      if (odd) found.push(this.ids[i]);
    }
    return found;
  }
}

// While the camera only translates (a drag or a panBy: same zoom, bearing and size, no pitch),
// the picture last drawn is moved by a CSS transform of the map's canvas instead of being drawn
// again, as Leaflet's canvas renderer does: without a GPU a WebGL frame of the whole map costs
// far more than a frame budget (and all of it is redrawn whatever changed), while moving a
// composited canvas costs the compositor alone. A real frame is drawn when the gesture ends,
// pauses for `pauseMs`, zooms or turns, or when `mustDraw()` says new content is waiting (points
// recoloured): what is shown is always a drawn frame at its right place; the strips the pan
// uncovers show the map's background until then. Every call of MapLibre's painter (once per
// frame, from Map._render after the camera moved; MapLibre 4.7.1, vendored) goes through here.
// Returns a handle: `enabled` (false: draw every frame), `pauseMs`, and counts of drawn and moved
// frames.
export function translateWhilePanning(map, mustDraw = () => false, { pauseMs = 150 } = {}) {
  const painter = map.painter;
  const draw = painter.render.bind(painter);
  const canvas = map.getCanvas();
  const handle = { enabled: true, pauseMs, drawn: 0, moved: 0 };
  let last = null; // the camera of the frame on the canvas
  let pause = null;
  let forced = false;
  let calls = 0;
  canvas.style.willChange = "transform";
  painter.render = (style, options) => {
    const t = map.transform;
    calls += 1;
    clearTimeout(pause);
    const same = last && t.zoom === last.zoom && t.bearing === last.bearing && t.pitch === 0
      && last.pitch === 0 && t.width === last.width && t.height === last.height;
    if (handle.enabled && options.moving && same && !forced && !mustDraw()) {
      const p = map.project(last.center); // where the drawn frame's centre is now
      canvas.style.transform = `translate(${p.x - t.width / 2}px, ${p.y - t.height / 2}px)`;
      handle.moved += 1;
      // a pause: no frame for pauseMs, and none in the next animation frame either (an animation
      // slowed down by a busy machine renders there: MapLibre asked for that frame first)
      const seen = calls;
      pause = setTimeout(() => requestAnimationFrame(() => {
        if (calls === seen) { forced = true; map.triggerRepaint(); }
      }), handle.pauseMs);
      return;
    }
    forced = false;
    canvas.style.transform = "";
    draw(style, options);
    handle.drawn += 1;
    last = { center: [t.center.lng, t.center.lat], zoom: t.zoom, bearing: t.bearing, pitch: t.pitch,
      width: t.width, height: t.height };
  };
  // the camera stopped: draw, unless the frame that ended the move was drawn already
  map.on("moveend", () => setTimeout(() => {
    if (canvas.style.transform) { forced = true; map.triggerRepaint(); }
  }, 0));
  return handle;
}
