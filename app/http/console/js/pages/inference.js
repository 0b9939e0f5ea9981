// One inference: its event timeline (Routed -> ... -> Debited, with times), the routing decision
// with every candidate and why it was or was not chosen, the x-ainfera-* headers the call was
// answered with, its cost, and its receipt: downloaded as served, and verified right here
// against the log's public key (verify.js), or any receipt file an auditor was handed.

import { get, pinned, receiptText } from "../api.js";
import { card, count, el, empty, errorBox, money, ms, statusBadge, when } from "../format.js";
import { verifyReceiptText } from "../verify.js";

export async function render(view, { arg, me }) {
  const id = arg;
  const [inference, decision, published, agents] = await Promise.all([
    get(`/v1/inferences/${encodeURIComponent(id)}`),
    get(`/v1/inferences/${encodeURIComponent(id)}/decision`).catch((e) => ({ error: e })),
    get("/v1/ledger/public-key").catch((e) => ({ error: e })),
    me.scope === "admin" ? get("/v1/admin/agents").catch(() => ({ data: [] }))
      : Promise.resolve({ data: [me.agent] }),
  ]);
  const agentName = agents.data.find((a) => a.id === events0(inference).agent_id)?.name;
  const events = inference.events;
  const byType = (t) => events.filter((e) => e.type === t);
  const routed = events[0];
  const completed = byType("Completed")[0];
  const debited = byType("Debited")[0];
  const status = completed ? completed.status : "in_flight";
  view.replaceChildren(
    el("div", { class: "page-head" },
      el("a", { href: "#/inferences", class: "link small" }, "← Inferences"),
      el("h1", { class: "mono", id: "inference-id" }, inference.id), statusBadge(status)),
    el("div", { class: "stats" },
      fact("Agent", agentName ? el("span", { title: routed.agent_id }, agentName)
        : el("span", { class: "mono small" }, routed.agent_id)),
      fact("Model", routed.router === "direct" ? routed.requested_model
        : `${routed.requested_model} → ${routed.chosen_model ?? "none"}`),
      fact("Router", routed.router),
      fact("Cost", debited ? money(debited.cost_usd, { id: "cost" }) : el("span", { class: "muted" }, "not debited")),
      fact("Latency", ms(completed?.latency_ms))),
    el("div", { class: "two" },
      card("Timeline", timeline(events)),
      card("Cost and usage", costBox(completed, debited))),
    card("Routing decision", decisionBox(decision)),
    card("Response headers", headersBox(inference.id, routed)),
    card("Receipt", receiptBox(inference.id, published)));
}

const events0 = (inference) => inference.events[0];

const fact = (label, value) => el("div", { class: "stat" }, el("div", { class: "stat-label" }, label),
  el("div", { class: "stat-value small" }, value));

function timeline(events) {
  const start = Date.parse(events[0].recorded_at);
  return el("ol", { class: "timeline", id: "timeline" }, events.map((e) => el("li", { "data-type": e.type },
    el("div", { class: "tl-head" }, el("strong", {}, e.type), el("span", { class: "muted" },
      ` +${(Date.parse(e.recorded_at) - start).toLocaleString("en-US")} ms`), " ", when(e.recorded_at)),
    el("div", { class: "tl-body small" }, describe(e)))));
}

function describe(e) {
  switch (e.type) {
    case "Routed":
      return `${e.api} · requested ${e.requested_model} · ${e.stream ? "streamed" : "not streamed"}` +
        ` · ${e.tools} tools · request ${e.request_id}`;
    case "Dispatched":
      return `attempt ${e.attempt} to ${e.provider} (${e.backend_model})` +
        (e.error ? ` failed: ${e.error.type} ${e.error.status ?? ""}${e.error.retryable ? " (retryable)" : ""}`
          : ` · upstream id ${e.upstream_request_id ?? "—"}`);
    case "Streamed":
      return `${e.mode} · first byte after ${e.ttft_ms ?? "—"} ms · ${count(e.chunks)} chunks · ${count(e.bytes)} bytes`;
    case "Completed":
      return `${e.status}${e.stop_reason ? ` (${e.stop_reason})` : ""} after ${e.latency_ms ?? "—"} ms`;
    case "Debited":
      return [money(e.cost_usd), ` at price ${e.price_version}`];
    default:
      return "";
  }
}

function costBox(completed, debited) {
  const usage = completed?.usage;
  return el("dl", { class: "facts" },
    el("dt", {}, "Charged"), el("dd", {}, debited ? [money(debited.cost_usd), el("span", { class: "muted mono small" }, `  $${debited.cost_usd} exactly`)] : "nothing"),
    el("dt", {}, "Price list"), el("dd", { class: "mono small" }, debited?.price_version ?? "—"),
    el("dt", {}, "Input tokens"), el("dd", {}, count(usage?.input_tokens)),
    el("dt", {}, "Output tokens"), el("dd", {}, count(usage?.output_tokens)),
    el("dt", {}, "Cache read / write"), el("dd", {}, `${count(usage?.cache_read)} / ${count(usage?.cache_write)}`));
}

function decisionBox(decision) {
  if (decision.error) return errorBox(decision.error);
  const head = el("p", { class: "small" }, `Router ${decision.router} · requested ${decision.requested_model}`,
    decision.alias_hit ? ` (alias ${decision.alias_hit})` : "", ` · chosen ${decision.chosen ?? "none"} · `,
    `quality floor ${decision.policy.min_quality ?? "—"} · `, el("span", { class: "mono", title: "the catalog and policy in force" }, decision.ruleset_hash));
  if (!decision.dashboard_candidates.length) {
    return [head, empty("A pinned call: no candidates were weighed.", "The requested model was called directly.")];
  }
  return [head, el("table", { class: "grid-table compact", id: "candidates" },
    el("thead", {}, el("tr", {}, ["Model", "Provider", "Quality", "Estimated cost", "Outcome"].map((h) => el("th", {}, h)))),
    el("tbody", {}, decision.dashboard_candidates.map((c) => el("tr", { class: c.chosen ? "chosen" : null, "data-model": c.model },
      el("td", { class: "mono" }, c.model), el("td", {}, c.provider), el("td", { class: "num" }, c.quality),
      el("td", { class: "num" }, money(c.est_cost_usd)),
      el("td", {}, c.chosen ? el("span", { class: "badge ok" }, "chosen")
        : c.excluded ? el("span", { class: "badge bad" }, `excluded: ${c.excluded.replaceAll("_", " ")}`)
          : el("span", { class: "muted" }, "eligible, not cheapest"))))))];
}

function headersBox(publicId, routed) {
  // Exactly what the gateway derives these headers from: the recorded Routed event.
  const headers = [
    ["x-ainfera-inference-id", publicId],
    ["x-ainfera-agent-id", routed.agent_id],
    ["x-ainfera-audit-url", `/v1/inferences/${publicId}`],
    ["x-ainfera-router", routed.router],
    ["x-ainfera-stream-mode", "native"],
    ["request-id", routed.request_id],
  ];
  return [el("pre", { class: "headers", id: "headers" }, headers.map(([k, v]) => `${k}: ${v}\n`)),
    el("p", { class: "muted small" }, "As the call was answered, rebuilt from its recorded events. "
      + "A non-streamed answer also carried x-ainfera-ledger-position, a store position the events do not record.")];
}

function receiptBox(publicId, published) {
  const vkeyInput = el("input", { id: "vkey", class: "mono", spellcheck: "false",
    value: pinned.vkey || published.vkey || "" });
  const keyNote = el("p", { class: "muted small" });
  const describeKey = () => {
    const text = vkeyInput.value.trim();
    const id = text.split("+")[1] || "?";
    keyNote.replaceChildren(`Key id ${id}`, pinned.vkey && text === pinned.vkey ? " · pinned by you"
      : published.vkey && text === published.vkey ? " · as this gateway publishes it (pin it to catch a swapped key)" : " · entered by you");
  };
  vkeyInput.addEventListener("input", describeKey);
  describeKey();
  const verdict = el("div", { class: "verdict", id: "verdict", "aria-live": "polite" });
  let served = null;
  const fetchReceipt = async () => {
    if (served === null) served = await receiptText(publicId);
    return served;
  };
  const run = async (text, source) => {
    verdict.replaceChildren(el("div", { class: "loading" }, "Verifying…"));
    try {
      const result = await verifyReceiptText(text, vkeyInput.value.trim());
      verdict.replaceChildren(ok(result, source));
      verdict.dataset.verdict = "verified";
    } catch (e) {
      verdict.replaceChildren(bad(e, source));
      verdict.dataset.verdict = e.check ? "failed" : "error";
    }
  };
  const verifyButton = el("button", { class: "primary", id: "verify", onclick: async () => {
    verdict.replaceChildren(el("div", { class: "loading" }, "Fetching the receipt…"));
    try { await run(await fetchReceipt(), "the receipt this gateway serves"); } catch (e) {
      verdict.replaceChildren(errorBox(e)); verdict.dataset.verdict = "error";
    }
  } }, "Verify in this browser");
  const download = el("button", { id: "download", onclick: async () => {
    try {
      const text = await fetchReceipt();
      const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      const a = el("a", { href: url, download: `${publicId}.receipt.json` });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { verdict.replaceChildren(errorBox(e)); }
  } }, "Download receipt");
  const file = el("input", { type: "file", id: "receipt-file", accept: "application/json,.json",
    onchange: async (e) => {
      const f = e.target.files[0];
      if (f) await run(await f.text(), `the file ${f.name}`);
    } });
  return [
    el("p", {}, "The receipt is this call's events with their leaf hashes, chain links and RFC 9162 "
      + "inclusion proofs against a signed checkpoint. Your browser recomputes all of it."),
    el("label", { for: "vkey" }, "Verifier key"), vkeyInput, keyNote,
    el("div", { class: "actions" }, verifyButton, download,
      el("label", { class: "file" }, "Verify a receipt file… ", file)),
    verdict,
  ];
}

const CHECKS = [["signature", "Checkpoint signed by the key (Ed25519)"],
  ["leaf_hash", "Every event hashes to its leaf (SHA-256 of RFC 8785 JSON)"],
  ["chain_link", "Hash chain links recomputed"],
  ["inclusion", "Every leaf is in the signed tree (RFC 9162 inclusion)"],
  ["sequence", "One inference of one tenant, in order, versions 1…n"]];

function ok(r, source) {
  return el("div", { class: "verdict-ok" },
    el("strong", { class: "verdict-title" }, "✓ Receipt verifies"),
    el("p", {}, `${r.events.length} events (${r.events.join(", ")}; leaves ${r.leaves.join(", ")}) of `
      + `tenant ${r.tenantId} are in ${r.origin} at tree size ${r.treeSize}, signed by key ${r.keyName}+${r.keyId}.`
      + (r.olderSize !== null ? ` The log extends the receipt's checkpoint of size ${r.olderSize}.` : "")),
    el("ul", { class: "checks" }, CHECKS.map(([id, text]) => el("li", { class: "pass", "data-check": id }, text))),
    el("p", { class: "muted small" }, `Checked: ${source}.`));
}

function bad(e, source) {
  return el("div", { class: "verdict-bad" },
    el("strong", { class: "verdict-title" }, "✗ Receipt does NOT verify"),
    el("p", { class: "mono", id: "verdict-reason" }, e.message),
    el("p", { class: "muted small" }, `Checked: ${source}. `, e.check ? `Failed check: ${e.check}.` : ""));
}
