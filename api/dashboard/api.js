// The API client: the bearer token lives in sessionStorage (gone when the tab closes); every
// error is a problem+json document turned into an ApiError with words a person can read.
const KEY = "luciole.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  // `expiresIn` (s): when to renew; kept beside the token (sessionStorage: gone with the tab)
  set: (value, expiresIn) => {
    sessionStorage.setItem(KEY, value);
    if (expiresIn) sessionStorage.setItem(`${KEY}.expires`, String(Date.now() + expiresIn * 1000));
  },
  expiresAt: () => Number(sessionStorage.getItem(`${KEY}.expires`)) || null,
  // the token's claims, read to choose where to renew it (the server checks the signature)
  claims: () => {
    try {
      return JSON.parse(atob(token.get().split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    } catch {
      return null;
    }
  },
  clear: () => { sessionStorage.removeItem(KEY); sessionStorage.removeItem(`${KEY}.expires`); },
};

// Renew the short-lived token a minute before it expires (POST /auth/refresh, the grid operator's
// in its own scope at /grid/auth/refresh: the server checks the account is still active and the
// login not too old); on refusal, the login page.
let renewal = null;
export function keepRenewed(onFailure) {
  clearTimeout(renewal);
  const at = token.expiresAt();
  if (!at) return;
  const wait = Math.max(1000, at - Date.now() - 60000);
  renewal = setTimeout(async () => {
    try {
      await renew();
      keepRenewed(onFailure);
    } catch (err) {
      onFailure(err);
    }
  }, wait);
}

export async function renew() {
  const grid = (token.claims() || {}).role === "grid_operator";
  const issued = await api(grid ? "/grid/auth/refresh" : "/auth/refresh", { method: "POST" });
  token.set(issued.access_token, issued.expires_in);
  return issued;
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

function words(status, problem) {
  const detail = problem && (problem.detail || problem.title);
  if (status === 403) return `Not allowed: ${detail || "your role may not do this"}.`;
  if (status === 401) return "Your session has ended: please log in again.";
  if (status === 404) return `Not found: ${detail || "it may have been deleted"}.`;
  if (status === 422 && problem && Array.isArray(problem.errors)) {
    return "Refused: " + problem.errors.map((e) => `${(e.loc || []).slice(1).join(".")} ${e.msg}`).join("; ");
  }
  return detail ? `${detail} (${status})` : `The server answered ${status}.`;
}

export async function api(path, { method = "GET", body, form } = {}) {
  const headers = { Accept: "application/json, application/geo+json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached; retrying.");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!response.ok) {
    if (response.status === 401 && !form) onUnauthorized();
    throw new ApiError(response.status, words(response.status, doc));
  }
  return doc;
}

// Every page of a cursor-paged list.
export async function all(path, limit = 1000) {
  const items = [];
  let cursor = null;
  const sep = path.includes("?") ? "&" : "?";
  do {
    const page = await api(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
