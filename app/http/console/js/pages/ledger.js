// Ledger: the latest signed checkpoint (its signature checked here), the tree size, the log's
// verifier key with its key id, recent checkpoints, and a consistency check between two
// checkpoints: both signatures and the RFC 9162 proof that the newer log extends the older
// one, recomputed in this browser. An auditor can paste a checkpoint they kept themselves.

import { get, pinned, query, request } from "../api.js";
import { card, el, errorBox, when } from "../format.js";
import { verifyCheckpointNote, verifyCheckpointPair } from "../verify.js";

export async function render(view) {
  const [published, latest, list] = await Promise.all([
    get("/v1/ledger/public-key"),
    request("GET", "/v1/ledger/checkpoint", { text: true }).catch((e) => ({ error: e })),
    get(`/v1/ledger/checkpoints${query({ limit: 20 })}`),
  ]);
  const vkey = pinned.vkey || published.vkey;
  if (latest.error) {
    view.replaceChildren(el("div", { class: "page-head" }, el("h1", {}, "Ledger")),
      card("Latest checkpoint", latest.error.status === 404
        ? el("div", { class: "empty" }, el("strong", {}, "No checkpoint has been signed yet."),
          el("p", {}, "The ledger signs one about a second after its first event is recorded."))
        : errorBox(latest.error)));
    return;
  }
  let head;
  try { head = await verifyCheckpointNote(latest.text, vkey); } catch (e) { head = { error: e }; }
  view.replaceChildren(
    el("div", { class: "page-head" }, el("h1", {}, "Ledger"),
      el("p", { class: "muted" }, "Every event of every call, agent, key and cap change is a leaf "
        + "of this append-only RFC 9162 Merkle tree; the gateway signs its size and root about "
        + "once a second.")),
    el("div", { class: "stats" },
      el("div", { class: "stat" }, el("div", { class: "stat-label" }, "Tree size"),
        el("div", { class: "stat-value", id: "tree-size" }, head.error ? "?" : head.size.toLocaleString("en-US")),
        el("div", { class: "stat-note" }, "leaves (events) in the latest signed checkpoint")),
      el("div", { class: "stat" }, el("div", { class: "stat-label" }, "Signature"),
        el("div", { class: "stat-value", id: "head-signature" }, head.error
          ? el("span", { class: "badge bad" }, "does not verify") : el("span", { class: "badge ok" }, "verified here")),
        el("div", { class: "stat-note" }, head.error ? head.error.message : `Ed25519, key ${head.keyName}+${head.keyId}`))),
    el("div", { class: "two" },
      card("Latest signed checkpoint", el("pre", { class: "note", id: "checkpoint" }, latest.text),
        head.error ? null : el("p", { class: "small mono" }, `root (hex) ${head.rootHex}`)),
      card("Verifier key", keyBox(published.vkey))),
    card("Consistency between two checkpoints", consistencyBox(list.checkpoints, latest.text, vkey)),
    card("Recent checkpoints", checkpointTable(list.checkpoints)));
}

function keyBox(published) {
  const current = pinned.vkey;
  const mismatch = current && current !== published;
  return [
    el("pre", { class: "note", id: "vkey-published" }, published),
    el("p", { class: "small" }, `Key id ${published.split("+")[1]}. `,
      mismatch ? el("strong", { class: "danger" }, "This is NOT the key you pinned: checks in this console use your pinned key.")
        : current ? "You pinned this key: checks in this console use it."
          : "Compare it with the key the operator publishes elsewhere, then pin it: the console will check everything against it."),
    el("div", { class: "actions" },
      el("button", { id: "pin", onclick: (e) => { pinned.vkey = published; e.target.textContent = "Pinned"; } },
        current === published ? "Pinned" : "Pin this key"),
      current ? el("button", { class: "link", onclick: (e) => { pinned.vkey = null; e.target.textContent = "Unpinned"; } }, "Unpin") : null),
  ];
}

function consistencyBox(checkpoints, latestNote, vkey) {
  const older = el("select", { id: "older" }, checkpoints.slice(1).map((c) =>
    el("option", { value: String(c.tree_size) }, `size ${c.tree_size.toLocaleString("en-US")} · ${c.signed_at}`)),
  el("option", { value: "pasted" }, "a checkpoint I kept (paste below)"));
  const pasted = el("textarea", { id: "older-note", rows: 5, class: "mono", placeholder: "ainfera.local/ledger\n40\n…\n\n— ainfera.local/ledger …", hidden: checkpoints.length > 1 });
  older.addEventListener("change", () => { pasted.hidden = older.value !== "pasted"; });
  const verdict = el("div", { class: "verdict", id: "consistency-verdict", "aria-live": "polite" });
  const run = async () => {
    verdict.replaceChildren(el("div", { class: "loading" }, "Checking…"));
    const note = older.value === "pasted" ? pasted.value.replace(/\r\n/g, "\n")
      : checkpoints.find((c) => String(c.tree_size) === older.value)?.note;
    if (!note) { verdict.replaceChildren(el("p", { class: "form-error" }, "Choose or paste the older checkpoint.")); return; }
    const size = Number((note.split("\n")[1] || "").trim());
    const newer = latestNote.split("\n")[1];
    try {
      const proof = await get(`/v1/ledger/consistency${query({ first: size, second: newer })}`);
      const r = await verifyCheckpointPair(note.endsWith("\n") ? note : `${note}\n`, latestNote, proof.proof, vkey);
      verdict.dataset.verdict = "verified";
      verdict.replaceChildren(el("div", { class: "verdict-ok" },
        el("strong", { class: "verdict-title" }, "✓ Consistent"),
        el("p", {}, `The log of size ${r.newerSize.toLocaleString("en-US")} extends the one of size `
          + `${r.olderSize.toLocaleString("en-US")}: nothing in the older tree was changed, reordered or removed. `
          + `Both checkpoints are signed by key ${r.keyId}.`)));
    } catch (e) {
      verdict.dataset.verdict = "failed";
      verdict.replaceChildren(el("div", { class: "verdict-bad" },
        el("strong", { class: "verdict-title" }, "✗ Not shown consistent"),
        el("p", { class: "mono" }, e.message),
        el("p", { class: "small muted" }, "Two signed checkpoints that fail this check are evidence that the log was rewritten: keep both.")));
    }
  };
  if (checkpoints.length < 2) older.value = "pasted";
  return [el("p", {}, "Checks, in this browser, that the latest checkpoint's log extends an older one."),
    el("div", { class: "inline-form" }, el("label", {}, "Older checkpoint", older),
      el("button", { class: "primary", id: "check-consistency", onclick: run }, "Check against the latest")),
    pasted, verdict];
}

function checkpointTable(rows) {
  return el("table", { class: "grid-table compact", id: "checkpoints" },
    el("thead", {}, el("tr", {}, ["Tree size", "Signed", "Root"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((c) => el("tr", {}, el("td", { class: "num" }, c.tree_size.toLocaleString("en-US")),
      el("td", {}, when(c.signed_at)), el("td", { class: "mono small" }, c.root_hash)))));
}
