// Overview: 30 days of spend and calls (split by agent or by outcome), today's spend against
// each cap, the caps rollup, p50 latency and error rate. An admin key sees the whole tenant;
// an agent key its own agent.

import { get, query } from "../api.js";
import { PALETTE, stackedBars } from "../chart.js";
import { card, cents, count, el, empty, errorBox, money, ms, nanos, percent, stat, sumDecimals }
  from "../format.js";

const OUTCOMES = [["succeeded", "#1f9d74"], ["fallback_succeeded", "#e0b000"],
  ["failed", "#c0392b"], ["rejected_budget", "#d9822b"], ["rejected_floor", "#9b59b6"],
  ["cancelled", "#7f8c8d"], ["abandoned", "#5d6d7e"], ["in_flight", "#2f6fde"]];

export async function render(view, { me }) {
  const admin = me.scope === "admin";
  const own = admin ? null : me.agent.id;
  const [usage, rollup, agents, metrics] = await Promise.all([
    get(`/v1/usage/daily${query({ days: 30, by: "agent", agent: own, fill: "zero" })}`),
    admin ? get("/v1/caps/rollup") : Promise.resolve(null),
    admin ? get("/v1/admin/agents") : Promise.resolve(null),
    admin ? Promise.resolve(null) : get(`/v1/agents/${own}/metrics`),
  ]);
  const names = new Map((agents?.data || [{ id: me.agent?.id, name: me.agent?.name }])
    .map((a) => [a.id, a.name]));
  const state = { metric: "spend", split: "agent", outcome: null };
  const chartSlot = el("div", { class: "chart-slot" });
  const toggles = el("div", { class: "toggles" },
    toggle("metric", [["spend", "Spend"], ["calls", "Calls"]], state, draw),
    toggle("split", [["agent", "By agent"], ["outcome", "By outcome"]], state, draw));

  async function draw() {
    if (state.split === "outcome" && !state.outcome) {
      chartSlot.replaceChildren(el("div", { class: "loading" }, "Loading…"));
      try {
        state.outcome = await get(
          `/v1/usage/daily${query({ days: 30, by: "outcome", agent: own, fill: "zero" })}`);
      } catch (e) { chartSlot.replaceChildren(errorBox(e, draw)); return; }
    }
    chartSlot.replaceChildren(chart(state, usage, names));
  }

  const totals = usage.totals;
  const window = admin
    ? { calls: rollup.calls, error_rate: rollup.error_rate, p50: rollup.latency_p50_ms }
    : { calls: metrics.calls, error_rate: metrics.error_rate, p50: metrics.latency_p50_ms };
  const stats = el("div", { class: "stats" },
    stat("Spend, 30 days", money(totals.cost_usd, { id: "total-spend" })),
    stat("Calls, 30 days", el("span", { id: "total-calls" }, count(totals.calls)),
      `${count(totals.by_status.ok)} ok · ${count(totals.by_status.error)} errors`),
    // The rollup's median is of routed calls only (the API contract); an agent's is of all.
    stat("p50 latency", el("span", { id: "p50" }, ms(window.p50)),
      admin ? "routed calls, last 24 hours" : "last 24 hours"),
    stat("Error rate", el("span", { id: "error-rate" }, percent(window.error_rate)),
      `${count(window.calls)} calls in the last 24 hours`));
  const noCalls = totals.calls === 0;
  view.replaceChildren(
    el("div", { class: "page-head" }, el("h1", {}, "Overview"),
      el("p", { class: "muted" }, admin ? `Tenant ${me.tenant.name}, all agents.`
        : `Agent ${me.agent.name} of tenant ${me.tenant.name}.`)),
    stats,
    card("Spend and calls per day, last 30 days", noCalls
      ? empty("No calls in the last 30 days.", admin
        ? "Create an agent and issue it a key on the Agents page, then point the Anthropic or "
          + "OpenAI SDK at this gateway with that key."
        : "Point the Anthropic or OpenAI SDK at this gateway with this agent's key.")
      : [toggles, chartSlot]),
    el("div", { class: "two" },
      card("Today against each cap", capsToday(admin ? agents.data : [ownAgent(me, usage)])),
      admin ? card("Caps rollup", rollupBox(rollup)) : card(`Agent ${me.agent.name}`, ownBox(metrics))));
  if (!noCalls) await draw();
}

function ownAgent(me, usage) {
  const today = usage.days[usage.days.length - 1];
  return { id: me.agent.id, name: me.agent.name, daily_cap_usd: me.agent.daily_cap_usd,
    spend_today_usd: today.cost_usd };
}

function toggle(name, options, state, onchange) {
  const group = el("div", { class: "segmented", role: "group", "data-toggle": name });
  for (const [value, label] of options) {
    group.append(el("button", { type: "button", "data-value": value,
      class: state[name] === value ? "on" : null, onclick: (e) => {
        state[name] = value;
        for (const b of group.children) b.classList.toggle("on", b === e.currentTarget);
        onchange();
      } }, label));
  }
  return group;
}

function chart(state, usage, names) {
  const spend = state.metric === "spend";
  const source = state.split === "agent" ? usage : state.outcome;
  const key = state.split === "agent" ? "by_agent" : "by_outcome";
  const seen = new Set();
  for (const day of source.days) for (const k of Object.keys(day[key] || {})) seen.add(k);
  const series = state.split === "agent"
    ? [...seen].sort((a, b) => (names.get(a) || a).localeCompare(names.get(b) || b))
      .map((k, i) => ({ key: k, label: names.get(k) || k || "(no agent)", color: PALETTE[i % PALETTE.length] }))
    : OUTCOMES.filter(([k]) => seen.has(k)).map(([k, color]) => ({ key: k, label: k.replaceAll("_", " "), color }));
  const days = source.days.map((day) => {
    const split = day[key] || {};
    const segments = series.map((s) => {
      const part = split[s.key];
      if (!part) return { series: s.key, value: 0, text: spend ? "$0" : "0" };
      return spend
        ? { series: s.key, value: Number(nanos(part.cost_usd)) / 1e9, text: `$${part.cost_usd}` }
        : { series: s.key, value: part.calls, text: String(part.calls) };
    });
    const total = spend
      ? { value: Number(nanos(day.cost_usd)) / 1e9, text: `$${day.cost_usd}` }
      : { value: day.calls, text: String(day.calls) };
    return { date: day.date, total, segments };
  });
  const figure = stackedBars({ days, series, label: spend ? "spend per day" : "calls per day",
    format: (v) => (spend ? axisUsd(v) : count(Math.round(v))) });
  figure.dataset.metric = state.metric;
  figure.dataset.split = state.split;
  const total = spend ? `$${sumDecimals(source.days.map((d) => d.cost_usd))}`
    : String(source.days.reduce((n, d) => n + d.calls, 0));
  figure.dataset.total = total;
  figure.append(el("figcaption", { class: "muted small" },
    spend ? "Spend is what was debited for calls routed that day (UTC). Hover a bar for exact amounts."
      : "Calls routed that day (UTC), each counted once."));
  return figure;
}

// Axis labels only (bars and tooltips carry exact amounts): enough decimals to tell ticks apart
// when a day's spend is a fraction of a cent.
function axisUsd(v) {
  if (v === 0) return "$0";
  if (v >= 0.1) return cents(v.toFixed(9));
  const decimals = Math.min(9, 2 - Math.floor(Math.log10(v)));
  return `$${v.toFixed(decimals).replace(/0+$/, "")}`;
}

function capsToday(agents) {
  if (!agents.length) return empty("No agents yet.", "Create one on the Agents page.");
  return el("ul", { class: "cap-list" }, agents.map((a) => {
    const capped = a.daily_cap_usd !== null;
    const used = nanos(a.spend_today_usd);
    const cap = capped ? nanos(a.daily_cap_usd) : 0n;
    const ratio = capped && cap > 0n ? Math.min(Number((used * 1000n) / cap) / 1000, 1) : capped ? 1 : 0;
    return el("li", { "data-agent": a.id },
      el("div", { class: "cap-row" }, el("strong", {}, a.name),
        el("span", {}, money(a.spend_today_usd), capped ? [" of ", money(a.daily_cap_usd)]
          : el("span", { class: "muted" }, " · no cap"))),
      capped ? el("div", { class: "meter", title: `${(ratio * 100).toFixed(1)}% of today's cap` },
        el("div", { class: ratio >= 0.9 ? "fill hot" : "fill", style: { width: `${ratio * 100}%` } }))
        : null);
  }));
}

function ownBox(m) {
  return el("dl", { class: "facts", id: "own-metrics" },
    el("dt", {}, "Calls, 24 h"), el("dd", {}, count(m.calls)),
    el("dt", {}, "Spent, 24 h"), el("dd", {}, money(m.cost_usd)),
    el("dt", {}, "Error rate, 24 h"), el("dd", {}, percent(m.error_rate)),
    el("dt", {}, "Latency p50 / p95"), el("dd", {}, `${ms(m.latency_p50_ms)} / ${ms(m.latency_p95_ms)}`),
    el("dt", {}, "Held by calls in flight"), el("dd", {}, m.spend_today?.counters === "ok"
      ? money(m.spend_today.reserved_usd) : el("span", { class: "badge bad" }, "counters unavailable")));
}

function rollupBox(r) {
  const budget = r.budget;
  return el("dl", { class: "facts", id: "rollup" },
    el("dt", {}, "Agents"), el("dd", { "data-k": "agents" }, count(r.agents)),
    el("dt", {}, "With a daily cap"), el("dd", { "data-k": "policies_set" }, count(r.policies_set)),
    el("dt", {}, "Caps set, total"), el("dd", {}, money(budget.set)),
    el("dt", {}, "Spent today by capped agents"), el("dd", {}, money(budget.used_usd)),
    el("dt", {}, "Held by calls in flight"), el("dd", {}, budget.counters === "ok"
      ? money(budget.reserved_usd) : el("span", { class: "badge bad" }, "counters unavailable")),
    el("dt", {}, "Quality breaches, 24 h"), el("dd", {}, count(r.breaches.quality)),
    el("dt", {}, "Unreliable agents, 24 h"), el("dd", {}, count(r.breaches.reliability)));
}

