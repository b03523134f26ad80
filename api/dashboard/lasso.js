// Point-in-polygon over typed arrays, for the map's lasso: the points are Web Mercator x, y in
// [0, 1] (Float64Array, computed once per map load), the lasso a polygon in the same units (its
// screen vertices unprojected: a projective map keeps straight edges straight, so the polygon is
// exact at any bearing or pitch). A bounding-box test first, then the even-odd crossing rule over
// the edges of the point's horizontal band.

export function mercatorX(lon) {
  return (lon + 180) / 360;
}

export function mercatorY(lat) {
  return (180 - (180 / Math.PI) * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))) / 360;
}

// Float64Array x and y of every point (lons, lats: arrays of one length).
export function toMercator(lons, lats) {
  const n = lons.length;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = mercatorX(lons[i]);
    ys[i] = mercatorY(lats[i]);
  }
  return { xs, ys };
}

// The indexes (Uint32Array, ascending) of the points inside `polygon`, a Float64Array
// [x0, y0, x1, y1, ...] of at least 3 vertices, closed implicitly. The polygon's height is cut
// into bands, each listing the edges that cross it, so a point meets the few edges of its band
// rather than all of them (a lasso of a few hundred vertices costs about what a square does).
export function pointsInPolygon(xs, ys, polygon) {
  const m = polygon.length >> 1;
  if (m < 3) return new Uint32Array(0);
  let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
  for (let k = 0; k < m; k++) {
    const x = polygon[2 * k]; const y = polygon[2 * k + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  // edge k runs from vertex k-1 to vertex k; horizontal edges never cross a ray and are left out
  const ax = new Float64Array(m); const ay = new Float64Array(m); const by = new Float64Array(m);
  const slope = new Float64Array(m);
  const bands = Math.max(1, Math.min(m, 1024));
  const height = (y1 - y0) / bands || 1;
  const bandOf = (y) => Math.min(bands - 1, Math.max(0, Math.floor((y - y0) / height)));
  const start = new Int32Array(bands + 1);
  let edges = 0;
  for (let k = 0; k < m; k++) {
    const j = (k + m - 1) % m;
    const yA = polygon[2 * j + 1]; const yB = polygon[2 * k + 1];
    if (yA === yB) continue;
    ax[edges] = polygon[2 * j]; ay[edges] = yA; by[edges] = yB;
    slope[edges] = (polygon[2 * k] - polygon[2 * j]) / (yB - yA);
    for (let b = bandOf(Math.min(yA, yB)); b <= bandOf(Math.max(yA, yB)); b++) start[b + 1]++;
    edges++;
  }
  for (let b = 0; b < bands; b++) start[b + 1] += start[b];
  const members = new Int32Array(start[bands]);
  const next = start.slice(0, bands);
  for (let e = 0; e < edges; e++) {
    const lo = bandOf(Math.min(ay[e], by[e])); const hi = bandOf(Math.max(ay[e], by[e]));
    for (let b = lo; b <= hi; b++) members[next[b]++] = e;
  }
  const n = xs.length;
  const out = new Uint32Array(n);
  let found = 0;
  for (let i = 0; i < n; i++) {
    const px = xs[i]; const py = ys[i];
    if (px < x0 || px > x1 || py < y0 || py > y1) continue;
    const b = Math.min(bands - 1, Math.floor((py - y0) / height));
    let odd = false;
    for (let t = start[b], end = start[b + 1]; t < end; t++) {
      const e = members[t];
      if ((ay[e] > py) !== (by[e] > py) && px < slope[e] * (py - ay[e]) + ax[e]) odd = !odd;
    }
    if (odd) out[found++] = i;
  }
  return out.slice(0, found);
}

// A freehand lasso thinned: a vertex is kept only `minStep` (screen px) from the last one kept,
// so a long drag stays a few hundred edges.
export function thin(points, minStep = 3) {
  const kept = [];
  for (const p of points) {
    const last = kept[kept.length - 1];
    if (!last || (p[0] - last[0]) ** 2 + (p[1] - last[1]) ** 2 >= minStep * minStep) kept.push(p);
  }
  return kept;
}

// The same test written plainly (arrays of [x, y], one point at a time): the oracle the browser
// test checks pointsInPolygon against.
export function insidePlain(point, vertices) {
  let odd = false;
  for (let a = 0, b = vertices.length - 1; a < vertices.length; b = a++) {
    const [xa, ya] = vertices[a]; const [xb, yb] = vertices[b];
    if ((ya > point[1]) !== (yb > point[1])
      && point[0] < ((xb - xa) * (point[1] - ya)) / (yb - ya) + xa) odd = !odd;
  }
  return odd;
}
