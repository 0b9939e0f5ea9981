"""The C2SP tlog-proof@v1 text form: one leaf's index, inclusion proof and checkpoint, offline.

```
c2sp.org/tlog-proof@v1
extra <base64>            (optional, unauthenticated)
index <decimal>
<base64 hash>             (zero or more, leaf's sibling first)

<signed checkpoint note, verbatim>
```

Only the format lives here; checking the signature and the proof needs a verifier key and is
done by adapters.receipts.verify_tlog_proof.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.checkpoint import b64decode_strict

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class TlogProof:
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    """The signed note text, still unverified."""
    extra: bytes = b""


def format_tlog_proof(
    leaf_index: int, inclusion_proof: Sequence[bytes], checkpoint: str, extra: bytes = b""
) -> str:
    if leaf_index < 0:
        raise MalformedTlogProofError(f"leaf index {leaf_index} is negative")
    if any(len(h) != 32 for h in inclusion_proof):
        raise MalformedTlogProofError("every inclusion proof hash must be 32 bytes")
    lines = [HEADER]
    if extra:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {leaf_index}")
    lines.extend(base64.b64encode(h).decode() for h in inclusion_proof)
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Strict parse; the checkpoint is everything after the first blank line."""
    head, blank, checkpoint = text.partition("\n\n")
    if not blank or not checkpoint:
        raise MalformedTlogProofError("tlog-proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise MalformedTlogProofError(f"tlog-proof does not start with {HEADER!r}")
    rest = lines[1:]
    extra = b""
    if rest and rest[0].startswith("extra "):
        extra = b64decode_strict(rest[0][len("extra ") :], "extra data", MalformedTlogProofError)
        rest = rest[1:]
    match = _INDEX.fullmatch(rest[0]) if rest else None
    if match is None:
        raise MalformedTlogProofError("tlog-proof has no 'index <decimal>' line")
    proof = []
    for n, line in enumerate(rest[1:]):
        digest = b64decode_strict(line, f"proof hash {n}", MalformedTlogProofError)
        if len(digest) != 32:
            raise MalformedTlogProofError(f"proof hash {n} is {len(digest)} bytes, not 32")
        proof.append(digest)
    return TlogProof(int(match.group(1)), tuple(proof), checkpoint, extra)


class MalformedTlogProofError(ValueError):
    """Text that is not a c2sp.org/tlog-proof@v1 proof."""
