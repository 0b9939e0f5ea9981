// The console's shell: sign-in, navigation and a hash router (#/overview, #/agents,
// #/inferences, #/inference/<id>, #/ledger). Each page module exports `render(view, params)`.

import { get, session } from "./api.js";
import { el, errorBox } from "./format.js";
import * as overview from "./pages/overview.js";
import * as agents from "./pages/agents.js";
import * as inferences from "./pages/inferences.js";
import * as inference from "./pages/inference.js";
import * as ledger from "./pages/ledger.js";
import * as signin from "./pages/signin.js";

const PAGES = { overview, agents, inferences, inference, ledger };
const NAV = [["overview", "Overview"], ["agents", "Agents"], ["inferences", "Inferences"],
  ["ledger", "Ledger"]];

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

export function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function parse() {
  const [path, q] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/");
  return { page: page || "overview", arg: rest.map(decodeURIComponent).join("/"),
    params: new URLSearchParams(q || "") };
}

async function identify() {
  if (!session.key) return null;
  if (!session.me) session.me = await get("/v1/me");
  return session.me;
}

function drawChrome(me) {
  const { page } = parse();
  nav.replaceChildren(...(me ? NAV.map(([id, label]) => el("a", {
    href: `#/${id}`, class: (page === id || (id === "inferences" && page === "inference")) ? "active" : null,
    "data-page": id }, label)) : []));
  who.replaceChildren(...(me ? [
    el("span", { class: "tenant", title: `tenant ${me.tenant.id}` }, me.tenant.name),
    el("span", { class: `badge ${me.scope === "admin" ? "admin" : "info"}`, "data-scope": me.scope },
      me.scope === "admin" ? "tenant admin" : `agent · ${me.agent.name}`),
    el("span", { class: "muted mono", title: "the key's first characters" }, `${me.hint}…`),
    el("button", { class: "link", id: "sign-out", onclick: signOut }, "Sign out"),
  ] : []));
}

function signOut() {
  session.key = null;
  session.me = null;
  go("#/overview");
}

async function route() {
  let me = null;
  try {
    me = await identify();
  } catch (e) {
    if (e.status === 401) { session.key = null; session.me = null; }
    else { drawChrome(null); view.replaceChildren(errorBox(e, route)); return; }
  }
  drawChrome(me);
  if (!me) { signin.render(view, () => { session.me = null; route(); }); return; }
  const { page, arg, params } = parse();
  const module = PAGES[page] || overview;
  view.replaceChildren(el("div", { class: "loading" }, "Loading…"));
  try {
    await module.render(view, { me, arg, params, go });
  } catch (e) {
    view.replaceChildren(errorBox(e, route));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("ainfera:signed-out", () => { session.key = null; session.me = null; route(); });
route();
