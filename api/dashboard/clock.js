// The API's clock as the page runs it (GET /dashboard/config): data periods ("last night", 7 and
// 30 days, the schedule editor's dates) are taken on it, since the data is stamped with it; a
// demo's simulated clock runs ahead of (or behind) the wall clock and faster. Token expiry and
// timers stay on the wall clock.
import { api } from "./api.js";

let base = null; // { serverMs, wallMs, speed }: the server's now at wallMs, then speed x the wall
let loading = null;

export function setClock(clock, wallMs = Date.now()) {
  const serverMs = Date.parse(clock && clock.now);
  base = Number.isFinite(serverMs) ? { serverMs, wallMs, speed: Number(clock.speed) > 0 ? Number(clock.speed) : 1 } : null;
}

// Now on the API's clock (the wall clock until the config is read, or if it cannot be).
export function now() {
  if (!base) return new Date();
  return new Date(base.serverMs + (Date.now() - base.wallMs) * base.speed);
}

// The dashboard's settings, read once (the tile URL and the clock).
export function config() {
  if (!loading) {
    loading = api("/dashboard/config").then((c) => { setClock(c.clock); return c; })
      .catch((err) => { loading = null; throw err; });
  }
  return loading;
}

window.lucioleClock = { now }; // for the browser tests
