// Formatting and DOM helpers. Money arrives as decimal strings and stays exact: it is summed and
// rounded as BigInt nano-dollars, never as floating point; the page shows cents with the exact
// amount on hover. Text is always set with textContent, never parsed as HTML.

const NANO = 1_000_000_000n;

// "0.0123" -> 12300000n nano-USD (more than 9 decimals are truncated: none of ours have them).
export function nanos(decimal) {
  if (decimal === null || decimal === undefined) return 0n;
  const text = String(decimal).trim();
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a decimal amount: ${text}`);
  const frac = (m[3] || "").padEnd(9, "0").slice(0, 9);
  const value = BigInt(m[2]) * NANO + BigInt(frac);
  return m[1] ? -value : value;
}

export function nanosToDecimal(value) {
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  const frac = (abs % NANO).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}${abs / NANO}${frac ? "." + frac : ""}`;
}

export const sumDecimals = (values) => nanosToDecimal(values.reduce((a, v) => a + nanos(v), 0n));

// Cents, rounded half up; a non-zero amount under half a cent says so instead of "$0.00".
export function cents(decimal) {
  const value = nanos(decimal);
  const abs = value < 0n ? -value : value;
  if (abs > 0n && abs < 5_000_000n) return value < 0n ? "-<$0.01" : "<$0.01";
  const c = (abs + 5_000_000n) / 10_000_000n;
  const dollars = (c / 100n).toLocaleString("en-US");
  const text = `$${dollars}.${(c % 100n).toString().padStart(2, "0")}`;
  return value < 0n ? `-${text}` : text;
}

export function money(decimal, attrs = {}) {
  if (decimal === null || decimal === undefined) return el("span", { class: "muted" }, "—");
  return el("span", { class: "money", title: `$${decimal} exactly`, "data-usd": decimal, ...attrs },
    cents(decimal));
}

export const count = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
export const ms = (n) => (n === null || n === undefined ? "—" : `${Number(n).toLocaleString("en-US")} ms`);
export const percent = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)}%`);

export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const d = new Date(iso);
  const text = d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return el("time", { datetime: iso, title: `${iso} (UTC)` }, text);
}

export const shortId = (id) => (id && id.length > 18 ? `${id.slice(0, 14)}…${id.slice(-4)}` : id);

// el("div", {class: "x", onclick: fn}, child, "text", ...): a DOM element, safely.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    // Through the CSSOM: the page's CSP forbids inline style attributes.
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export function statusBadge(status) {
  const kind = status === "succeeded" ? "ok" : status === "fallback_succeeded" ? "warn"
    : status === "in_flight" ? "info" : "bad";
  return el("span", { class: `badge ${kind}`, "data-status": status }, status.replaceAll("_", " "));
}

// An empty state that says what to do next.
export function empty(title, ...hint) {
  return el("div", { class: "empty" }, el("strong", {}, title), el("p", {}, ...hint));
}

export function errorBox(error, retry) {
  return el("div", { class: "error-box", role: "alert" },
    el("strong", {}, "Could not load this: "), el("span", { class: "error-message" }, error.message),
    retry ? el("button", { class: "link", onclick: retry }, "Try again") : null);
}

export function card(title, ...body) {
  return el("section", { class: "card" }, title ? el("h2", {}, title) : null, ...body);
}

export function stat(label, value, note, attrs = {}) {
  return el("div", { class: "stat", ...attrs }, el("div", { class: "stat-label" }, label),
    el("div", { class: "stat-value" }, value), note ? el("div", { class: "stat-note" }, note) : null);
}
