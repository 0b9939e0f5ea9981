"""The console's in-browser verifier (app/http/console/js/verify.js) against the Python one:
the published RFC 9162 vectors, and for an honest receipt and every single-field change to it
(plus reorderings, dropped entries, duplicate keys, floats, other keys, a consistency proof),
the browser must reach the same verdict as `ainfera receipt verify`: the same check, at the
same leaf, with the same message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.receipts import ReceiptVerificationError
from adapters.signer import Ed25519NoteSigner
from app.cli.receipt_commands import verify_files
from domain.merkle import consistency_proof
from tests.browser.conftest import Console
from tests.unit.ledger.test_receipt_verify import ORIGIN, Ledger, b64, mutations

pytestmark = pytest.mark.browser
VECTORS = Path(__file__).resolve().parents[1] / "data" / "rfc9162-vectors"

RUN_CASES = """async ([cases]) => {
  const m = await import("/console/js/verify.js");
  const out = [];
  for (const [text, vkey] of cases) {
    try {
      const r = await m.verifyReceiptText(text, vkey);
      out.push({ verified: true, leaves: r.leaves, tree: r.treeSize, older: r.olderSize });
    } catch (e) {
      out.push({ verified: false, check: e.check ?? null, leaf: e.leafIndex ?? null,
                 message: e.detail ?? String(e) });
    }
  }
  return out;
}"""

RUN_VECTORS = """async ([inclusion, consistency]) => {
  const m = await import("/console/js/verify.js");
  const bytes = (s) => Uint8Array.from(atob(s || ""), (c) => c.charCodeAt(0));
  const out = [];
  for (const v of inclusion) {
    try {
      await m.verifyInclusion(bytes(v.leafHash), v.leafIdx, v.treeSize, (v.proof || []).map(bytes),
                              bytes(v.root));
      out.push(false);
    } catch (e) { out.push(true); }
  }
  for (const v of consistency) {
    try {
      await m.verifyConsistency(v.size1, v.size2, bytes(v.root1), bytes(v.root2),
                                (v.proof || []).map(bytes));
      out.push(false);
    } catch (e) { out.push(true); }
  }
  return out;
}"""


@pytest.fixture
def verifier(console: Console, page: Any) -> Any:
    page.goto(f"{console.url}/console/")
    page.wait_for_selector("#key")
    return page


def test_the_rfc9162_vectors_in_the_browser(verifier: Any) -> None:
    inclusion = [json.loads(p.read_text()) for p in sorted((VECTORS / "inclusion").rglob("*.json"))]
    consistency = [json.loads(p.read_text())
                   for p in sorted((VECTORS / "consistency").rglob("*.json"))]
    assert len(inclusion) >= 90
    assert len(consistency) >= 90
    failed = verifier.evaluate(RUN_VECTORS, [inclusion, consistency])
    wanted = [bool(v["wantErr"]) for v in inclusion + consistency]
    wrong = [v.get("desc") for v, got, want in zip(inclusion + consistency, failed, wanted,
                                                   strict=True) if got != want]
    assert not wrong


def python_verdict(text: str, vkey: str, tmp: Path) -> dict[str, Any]:
    path = tmp / "receipt.json"
    path.write_text(text, encoding="utf-8")
    try:
        verified = verify_files(str(path), vkey, None, None)
    except ReceiptVerificationError as exc:
        return {"verified": False, "check": str(exc.check), "leaf": exc.leaf_index,
                "message": exc.message}
    older = verified.older_checkpoint
    return {"verified": True, "leaves": [e.leaf_index for e in verified.entries],
            "tree": verified.checkpoint.size, "older": None if older is None else older.size}


def cases(ledger: Ledger, signer: Ed25519NoteSigner) -> list[tuple[str, str, str]]:
    """(name, receipt text, vkey): honest, every one-field change, and the rest."""
    vkey = signer.vkey
    receipt = ledger.receipt(signer)
    out = [("honest", json.dumps(receipt), vkey)]
    for path, changed in mutations(receipt):
        out.append((f"mutated {path}", json.dumps(changed), vkey))
    reordered = copy.deepcopy(receipt)
    reordered["entries"][1], reordered["entries"][2] = (reordered["entries"][2],
                                                        reordered["entries"][1])
    out.append(("reordered", json.dumps(reordered), vkey))
    dropped = copy.deepcopy(receipt)
    del dropped["entries"][1]
    out.append(("dropped a middle entry", json.dumps(dropped), vkey))
    trailing = copy.deepcopy(receipt)
    del trailing["entries"][-1]
    out.append(("dropped the last entry (verifies: see docs/compliance.md)",
                json.dumps(trailing), vkey))
    floated = json.dumps(receipt).replace('"input_tokens": 12', '"input_tokens": 12.0', 1)
    out.append(("a float in an event", floated, vkey))
    duplicated = json.dumps(receipt).replace('{"format"', '{"origin": "x", "format"', 1)
    out.append(("a duplicated key", duplicated, vkey))
    out.append(("not JSON", json.dumps(receipt)[:-1], vkey))
    other = Ed25519NoteSigner.generate(ORIGIN)
    out.append(("another key", json.dumps(receipt), other.vkey))
    out.append(("a malformed vkey", json.dumps(receipt), vkey.replace("+", "-", 1)))
    out.append(("a vkey with a wrong id", json.dumps(receipt),
                vkey.split("+")[0] + "+00000000+" + vkey.split("+", 2)[2]))
    size = len(ledger.events)
    with_proof = copy.deepcopy(receipt)
    with_proof["consistency"] = {
        "from_checkpoint": ledger.checkpoint(signer, 5),
        "proof": [b64(h) for h in consistency_proof(5, size, ledger.tree)]}
    out.append(("with a consistency proof", json.dumps(with_proof), vkey))
    for path, changed in mutations(with_proof["consistency"]):
        bad = {**with_proof, "consistency": changed}
        out.append((f"consistency mutated {path}", json.dumps(bad), vkey))
    out.append(("consistency from a forged checkpoint", json.dumps(
        {**with_proof, "consistency": {**with_proof["consistency"],
                                       "from_checkpoint": other.sign_checkpoint(
                                           ORIGIN, 5, ledger.tree(0, 5))}}), vkey))
    return out


def test_the_browser_reaches_the_clis_verdict_on_every_receipt(
        verifier: Any, tmp_path: Path) -> None:
    ledger = Ledger()
    signer = Ed25519NoteSigner.generate(ORIGIN)
    all_cases = cases(ledger, signer)
    assert len(all_cases) > 200
    browser = verifier.evaluate(RUN_CASES, [[(text, vkey) for _, text, vkey in all_cases]])
    differ = []
    for (name, text, vkey), got in zip(all_cases, browser, strict=True):
        want = python_verdict(text, vkey, tmp_path)
        if "is not JSON" in want.get("message", ""):
            # Two JSON parsers word their syntax errors differently (and the CLI names the
            # file): the verdict, the check and what is wrong must still agree.
            assert "is not JSON" in got["message"], got
            for what in ("duplicate key",):
                assert (what in want["message"]) == (what in got["message"]), (want, got)
            want, got = {**want, "message": ""}, {**got, "message": ""}
        if got != want:
            differ.append((name, want, got))
    assert not differ, "\n".join(f"{n}:\n  cli     {w}\n  browser {g}" for n, w, g in differ[:15])
    verdicts = [python_verdict(text, vkey, tmp_path)["verified"] for _, text, vkey in all_cases]
    assert verdicts.count(True) >= 3  # honest, trailing entry dropped, with consistency
    assert verdicts.count(False) > 200
