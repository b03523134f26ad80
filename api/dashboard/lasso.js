// Point-in-polygon over typed arrays, for the map's lasso: the points are Web Mercator x, y in
// [0, 1] (Float64Array, computed once per map load), the lasso a polygon in the same units (its
// screen vertices unprojected: a projective map keeps straight edges straight, so the polygon is
// exact at any bearing or pitch). A bounding-box test first, then the even-odd crossing rule.

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
// [x0, y0, x1, y1, ...] of at least 3 vertices, closed implicitly.
export function pointsInPolygon(xs, ys, polygon) {
  const m = polygon.length >> 1;
  if (m < 3) return new Uint32Array(0);
  let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
  for (let k = 0; k < m; k++) {
    const x = polygon[2 * k]; const y = polygon[2 * k + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  const n = xs.length;
  const out = new Uint32Array(n);
  let found = 0;
  for (let i = 0; i < n; i++) {
    const px = xs[i]; const py = ys[i];
    if (px < x0 || px > x1 || py < y0 || py > y1) continue;
    let odd = false;
    let bx = polygon[2 * m - 2]; let by = polygon[2 * m - 1];
    for (let k = 0; k < m; k++) {
      const ax = polygon[2 * k]; const ay = polygon[2 * k + 1];
      if ((ay > py) !== (by > py) && px < ((bx - ax) * (py - ay)) / (by - ay) + ax) odd = !odd;
      bx = ax; by = ay;
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
