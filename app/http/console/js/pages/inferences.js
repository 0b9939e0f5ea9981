// Inferences: the list from GET /v1/inferences with its filters (agent, status, model, router,
// time range), newest first, paged with the API's cursor. Filters live in the URL hash, so a
// filtered view can be bookmarked or shared with someone who has a key of the tenant.

import { get, query } from "../api.js";
import { card, el, empty, errorBox, money, ms, shortId, statusBadge, when } from "../format.js";

const STATUSES = ["succeeded", "fallback_succeeded", "failed", "rejected_budget", "rejected_floor",
  "cancelled", "abandoned", "in_flight"];
const FILTERS = ["agent", "status", "model", "router", "since", "until"];

export async function render(view, { me, params, go }) {
  const admin = me.scope === "admin";
  const [agents, models] = await Promise.all([
    admin ? get("/v1/admin/agents") : Promise.resolve({ data: [me.agent] }),
    get("/v1/models").catch(() => ({ data: [] })),
  ]);
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || ""]));
  const form = filterForm(filters, agents.data, models.data, admin, go);
  const table = el("tbody");
  const more = el("button", { class: "secondary", id: "more", hidden: true }, "Load more");
  const slot = el("div", { class: "list-slot" });
  let cursor = null;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await get(`/v1/inferences${query({ ...apiFilters(filters), limit: 50, cursor })}`);
      for (const row of page.data) table.append(rowOf(row));
      cursor = page.next_cursor;
      more.hidden = !page.has_more;
      if (!table.children.length) {
        const filtered = FILTERS.some((f) => filters[f]);
        slot.replaceChildren(filtered
          ? empty("No inference matches these filters.", "Widen the time range or clear a filter.")
          : empty("No inferences yet.", "Point the Anthropic or OpenAI SDK at this gateway with an "
            + "agent key (base_url = this address) and make a call: it appears here."));
      }
    } catch (e) {
      slot.replaceChildren(errorBox(e, load));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  slot.replaceChildren(el("table", { class: "grid-table", id: "inferences" },
    el("thead", {}, el("tr", {}, ["Routed", "Inference", "Agent", "Model", "Router", "Status",
      "Latency", "Cost"].map((h) => el("th", {}, h)))), table), more);
  view.replaceChildren(el("div", { class: "page-head" }, el("h1", {}, "Inferences"),
    el("p", { class: "muted" }, admin ? "Every call of the tenant, newest first."
      : `Calls of agent ${me.agent.name}, newest first.`)),
  card(null, form), card(null, slot));
  await load();
}

// datetime-local inputs hold local wall time; the API wants UTC with a zone.
const toUtc = (local) => (local ? new Date(local).toISOString() : "");
const toLocal = (iso) => {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

function apiFilters(f) {
  return { agent: f.agent, status: f.status, model: f.model, router: f.router, since: f.since, until: f.until };
}

function filterForm(filters, agents, models, admin, go) {
  const select = (name, label, options) => el("label", {}, label, el("select", { name, id: `f-${name}` },
    options.map(([value, text]) => el("option", { value, selected: filters[name] === value ? true : null }, text))));
  const form = el("form", { class: "filters", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const f of FILTERS) {
      const v = String(data.get(f) || "").trim();
      next[f] = f === "since" || f === "until" ? toUtc(v) : v;
    }
    go(`#/inferences${query(next)}`);
  } },
  admin ? select("agent", "Agent", [["", "All agents"], ...agents.map((a) => [a.id, a.name])]) : null,
  select("status", "Status", [["", "Any status"], ...STATUSES.map((s) => [s, s.replaceAll("_", " ")])]),
  el("label", {}, "Model", el("input", { name: "model", id: "f-model", list: "model-list",
    value: filters.model, placeholder: "any" })),
  el("datalist", { id: "model-list" }, models.map((m) => el("option", { value: m.id }))),
  select("router", "Router", [["", "Any"], ["ainfera-inference", "ainfera-inference"], ["direct", "direct (pinned)"]]),
  el("label", {}, "From", el("input", { type: "datetime-local", name: "since", id: "f-since", value: toLocal(filters.since) })),
  el("label", {}, "Until", el("input", { type: "datetime-local", name: "until", id: "f-until", value: toLocal(filters.until) })),
  el("div", { class: "filter-actions" }, el("button", { type: "submit", class: "primary" }, "Apply"),
    el("a", { href: "#/inferences", class: "link" }, "Clear")));
  return form;
}

function rowOf(row) {
  const model = row.router === "direct" ? row.requested_model
    : `${row.requested_model} → ${row.chosen_model ?? "none"}`;
  return el("tr", { class: "clickable", "data-id": row.id, onclick: () => { location.hash = `#/inference/${row.id}`; } },
    el("td", {}, when(row.created_at)),
    el("td", {}, el("a", { href: `#/inference/${row.id}`, class: "mono", title: row.id }, shortId(row.id))),
    el("td", {}, row.agent_name || shortId(row.agent_id)),
    el("td", { class: "mono small" }, model),
    el("td", {}, row.router),
    el("td", {}, statusBadge(row.status)),
    el("td", { class: "num" }, ms(row.latency_ms)),
    el("td", { class: "num" }, money(row.cost_usd)));
}
