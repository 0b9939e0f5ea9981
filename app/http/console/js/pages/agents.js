// Agents: each agent's cap, today's spend and 24-hour metrics. A tenant admin also creates
// agents, sets or lifts caps, issues keys (the secret shown once) and revokes them, and reads
// the audit trail of those changes as the ledger holds it. An agent key sees its own agent.

import { get, post, put, query } from "../api.js";
import { card, count, el, empty, money, ms, percent, shortId, when } from "../format.js";

export async function render(view, { me, open = null, secret = null }) {
  if (me.scope !== "admin") return renderAgentKey(view, me);
  const [agents, keys, audit] = await Promise.all([
    get("/v1/admin/agents"), get("/v1/admin/keys"), get("/v1/admin/audit?limit=20")]);
  const notice = el("div", { id: "notice" });
  // After a change the page is read again from the API (so it shows what the ledger holds),
  // keeping the agent that was being managed open and a just-issued secret on screen.
  const rerender = async (message, keep = {}) => {
    await render(view, { me, ...keep });
    if (message) view.querySelector("#notice").replaceChildren(message);
  };
  view.replaceChildren(
    el("div", { class: "page-head" }, el("h1", {}, "Agents"),
      el("p", { class: "muted" }, "Every change here is an event on the ledger, signed into the "
        + "same hash chain as the calls, naming your admin key.")),
    notice,
    card("New agent", newAgentForm(rerender)),
    card(`Agents of ${me.tenant.name}`, agentTable(agents.data, keys.data, rerender, open, secret)),
    card("Recent changes (from the ledger)", auditList(audit.data)));
}

function newAgentForm(rerender) {
  const name = el("input", { name: "name", id: "new-agent-name", required: true, maxlength: 128,
    placeholder: "support-bot" });
  const cap = el("input", { name: "cap", id: "new-agent-cap", inputmode: "decimal",
    placeholder: "none", pattern: "[0-9]+(\\.[0-9]+)?" });
  const error = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "inline-form", id: "new-agent", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const created = await post("/v1/admin/agents", { name: name.value.trim(),
        daily_cap_usd: cap.value.trim() || null });
      await rerender(el("p", { class: "ok-box" }, `Agent ${created.name} registered. `
        + "Issue it a key below to make its first call."));
    } catch (err) { error.textContent = err.message; }
  } },
  el("label", {}, "Name", name), el("label", {}, "Daily cap (USD)", cap),
  el("button", { class: "primary", type: "submit" }, "Create agent"), error);
  return form;
}

function agentTable(agents, keys, rerender, open, secret) {
  if (!agents.length) return empty("No agents yet.", "Create one above.");
  const rows = [];
  for (const a of agents) {
    const m = a.metrics_24h;
    const detail = el("tr", { class: "detail", hidden: a.id !== open },
      el("td", { colspan: 8 }, agentDetail(a, keys.filter((k) => k.agent_id === a.id), rerender,
        a.id === open ? secret : null)));
    rows.push(el("tr", { "data-agent": a.name, "data-agent-id": a.id },
      el("td", {}, el("strong", {}, a.name), el("div", { class: "muted mono small" }, shortId(a.id))),
      el("td", { "data-k": "cap" }, a.daily_cap_usd === null ? el("span", { class: "muted" }, "no cap")
        : money(a.daily_cap_usd)),
      el("td", { "data-k": "spend-today" }, money(a.spend_today_usd)),
      el("td", {}, count(m.calls)), el("td", {}, percent(m.error_rate)),
      el("td", {}, ms(m.latency_p50_ms)), el("td", { "data-k": "keys" }, count(a.active_keys)),
      el("td", {}, el("button", { class: "link", "data-action": "manage", onclick: () => {
        detail.hidden = !detail.hidden;
      } }, "Manage"))), detail);
  }
  return el("table", { class: "grid-table", id: "agents" },
    el("thead", {}, el("tr", {}, ["Agent", "Daily cap", "Spent today", "Calls 24 h", "Errors 24 h",
      "p50 24 h", "Active keys", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function agentDetail(agent, keys, rerender, secretShown) {
  const amount = el("input", { name: "cap", inputmode: "decimal", placeholder: "5.00",
    "data-field": "cap", value: agent.daily_cap_usd ?? "" });
  const error = el("p", { class: "form-error", role: "alert" });
  const setCap = async (value) => {
    error.textContent = "";
    try {
      await put(`/v1/admin/agents/${agent.id}/cap`, { daily_cap_usd: value });
      await rerender(el("p", { class: "ok-box" }, value === null
        ? `The daily cap of ${agent.name} is lifted.`
        : `The daily cap of ${agent.name} is now $${value}. Gateways apply it within 2 seconds.`),
      { open: agent.id });
    } catch (err) { error.textContent = err.message; }
  };
  const capForm = el("form", { class: "inline-form", "data-form": "cap", onsubmit: (e) => {
    e.preventDefault();
    if (!amount.value.trim()) { error.textContent = "Give an amount in USD, or lift the cap."; return; }
    setCap(amount.value.trim());
  } }, el("label", {}, "Daily cap (USD)", amount),
  el("button", { type: "submit", class: "primary" }, "Set cap"),
  el("button", { type: "button", "data-action": "lift", onclick: () => setCap(null) }, "Lift cap"));
  const secret = el("div", { class: "secret-slot" }, secretShown);
  const issue = el("button", { class: "primary", "data-action": "issue-key", onclick: async () => {
    error.textContent = "";
    try {
      const issued = await post("/v1/admin/keys", { agent: agent.id });
      const code = el("code", { class: "secret", id: "new-key" }, issued.key);
      const box = el("div", { class: "secret-box", role: "status" },
        el("strong", {}, `New key for ${agent.name}. Copy it now: it is shown only this once.`),
        code, el("button", { type: "button", onclick: () => navigator.clipboard?.writeText(issued.key) },
          "Copy"),
        el("p", { class: "small muted" }, "Use it as the SDK's api_key with base_url pointing at this gateway."));
      await rerender(null, { open: agent.id, secret: box });
    } catch (err) { error.textContent = err.message; }
  } }, "Issue a key");
  return el("div", { class: "agent-detail" }, capForm, error,
    el("div", { class: "keys-head" }, el("h3", {}, "Keys"), issue), secret,
    keys.length ? el("table", { class: "grid-table compact" },
      el("thead", {}, el("tr", {}, ["Key", "Issued", "By", "State", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, keys.map((k) => el("tr", { "data-key-id": k.id },
        el("td", { class: "mono" }, `${k.hint}…`), el("td", {}, when(k.created_at)),
        el("td", {}, by(k.created_by)),
        el("td", {}, k.revoked ? el("span", { class: "badge bad" }, "revoked") : el("span", { class: "badge ok" }, "active")),
        el("td", {}, k.revoked ? null : el("button", { class: "link danger", "data-action": "revoke", onclick: async () => {
          if (!confirm(`Revoke key ${k.hint}…? Calls with it are refused within a second.`)) return;
          try {
            await post(`/v1/admin/keys/${k.id}/revoke`, {});
            await rerender(el("p", { class: "ok-box" }, `Key ${k.hint}… revoked.`), { open: agent.id });
          } catch (err) { error.textContent = err.message; }
        } }, "Revoke"))))))
      : el("p", { class: "muted" }, "No keys yet: issue one to let this agent make calls."));
}

const by = (actor) => (actor.kind === "operator" ? el("span", { class: "muted" }, "operator (CLI)")
  : el("span", { class: "mono", title: actor.key_id }, actor.hint ? `admin ${actor.hint}…` : `admin ${shortId(actor.key_id)}`));

function auditList(rows) {
  if (!rows.length) return empty("No changes yet.", "Changes you make here appear in this list.");
  return el("table", { class: "grid-table compact", id: "audit" },
    el("thead", {}, el("tr", {}, ["When", "Change", "By", "Leaf"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", { "data-type": r.type },
      el("td", {}, when(r.recorded_at)), el("td", {}, r.summary), el("td", {}, by(r.by)),
      el("td", { class: "mono", title: `leaf ${r.leaf_index} of the ledger` }, `#${r.leaf_index}`)))));
}

async function renderAgentKey(view, me) {
  const metrics = await get(`/v1/agents/${me.agent.id}/metrics`);
  const usage = await get(`/v1/usage/daily${query({ days: 1, agent: me.agent.id })}`);
  view.replaceChildren(
    el("div", { class: "page-head" }, el("h1", {}, "Agents"),
      el("p", { class: "muted" }, "Signed in with an agent key: you see this agent only. "
        + "Caps and keys are changed by a tenant admin.")),
    card(me.agent.name, el("dl", { class: "facts", id: "own-agent" },
      el("dt", {}, "Agent id"), el("dd", { class: "mono" }, me.agent.id),
      el("dt", {}, "Daily cap"), el("dd", {}, me.agent.daily_cap_usd === null
        ? el("span", { class: "muted" }, "no cap") : money(me.agent.daily_cap_usd)),
      el("dt", {}, "Spent today"), el("dd", {}, money(usage.totals.cost_usd)),
      el("dt", {}, "Calls, 24 h"), el("dd", {}, count(metrics.calls)),
      el("dt", {}, "Error rate, 24 h"), el("dd", {}, percent(metrics.error_rate)),
      el("dt", {}, "Latency p50 / p95"), el("dd", {}, `${ms(metrics.latency_p50_ms)} / ${ms(metrics.latency_p95_ms)}`))));
}

