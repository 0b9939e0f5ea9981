// The console's one door to the gateway: the public HTTP API with the signed-in key. The key
// lives in this tab's sessionStorage only (no cookie, no server session) and is sent as
// `x-api-key`. Errors come back in the gateway's own shape and are raised with its message.

const KEY = "ainfera.console.key";
const VKEY = "ainfera.console.pinned-vkey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY); },
  me: null,
};

// A verifier key the auditor pinned (public information, so it may outlive the tab).
export const pinned = {
  get vkey() { return localStorage.getItem(VKEY); },
  set vkey(value) { if (value) localStorage.setItem(VKEY, value); else localStorage.removeItem(VKEY); },
};

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function raiseFor(response) {
  let message = `${response.status} ${response.statusText}`;
  let type = null;
  try {
    const body = await response.json();
    message = body?.error?.message || message;
    type = body?.error?.type || null;
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401 && session.key) {
    window.dispatchEvent(new CustomEvent("ainfera:signed-out", { detail: message }));
  }
  throw new ApiError(response.status, message, type);
}

export async function request(method, path, { body, key, text, headers } = {}) {
  const sent = { ...(headers || {}) };
  const k = key ?? session.key;
  if (k) sent["x-api-key"] = k;
  if (body !== undefined) sent["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `the gateway did not answer (${e.message})`, "network");
  }
  if (!response.ok) await raiseFor(response);
  if (text) return { status: response.status, text: await response.text(), headers: response.headers };
  return response.json();
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body, opts) => request("POST", path, { ...opts, body });
export const put = (path, body, opts) => request("PUT", path, { ...opts, body });

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// A receipt is ready once every event of the inference is inside a signed checkpoint: until
// then the gateway answers 202 with Retry-After. Waits for it, up to `within` ms.
export async function receiptText(publicId, within = 30000) {
  const deadline = Date.now() + within;
  for (;;) {
    const r = await request("GET", `/v1/inferences/${encodeURIComponent(publicId)}/receipt`, { text: true });
    if (r.status === 200) return r.text;
    if (Date.now() > deadline) {
      throw new ApiError(202, "the receipt is not ready yet: its events are not in a signed checkpoint; try again shortly");
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}
