"""What the benchmarks share: result sections, percentiles, finding child processes and the fake
upstream process handle. CPU accounting is bench/cpu.py."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Section:
    """One benchmark's results: a table and free-text notes (ratios, caveats)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        if self.seconds:  # sections derived from another's rows have no time of their own
            lines.append(f"- section wall time: {self.seconds:.1f} s")
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c)
                  for i, c in enumerate(self.columns)]
        out = [f"== {self.title}" + (f" ({self.seconds:.1f} s)" if self.seconds else "")]
        if self.rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
            out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                    for r in self.rows]
        out += [f"  * {note}" for note in self.notes]
        return "\n".join(out)


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def children_matching(word: str) -> list[int]:
    """Pids of this process's direct children whose command line contains `word`."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                cmdline = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and word in cmdline:
            found.append(int(entry))
    return found


class FakeServer:
    """bench/fake_server.py as a child process, scripted over its stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_server"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        first = self._read()
        if not first.startswith("base_url "):
            raise RuntimeError(f"fake upstream did not start: {first!r}")
        self.base_url = first.split(" ", 1)[1]
        self.openai_base_url = f"{self.base_url}/v1"
        self.pid = self.proc.pid

    def _read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def script_all(self, first_byte_delay: float, chunk_delay: float, words: int) -> None:
        for model in ("up-claude", "up-gpt", "up-gemini", "up-weak"):
            answer = self.command(f"script {model} {first_byte_delay} {chunk_delay} {words}")
            if answer != "ok":
                raise RuntimeError(f"fake upstream refused a script: {answer}")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def module_at(rev: str, path: str, name: str, scratch: Path,
              replacements: Mapping[str, str] | None = None) -> ModuleType:
    """The module at `path` as it was at git revision `rev`, imported as `name` beside this
    checkout's own (for benchmarks that run a base revision's code and the working tree's in
    one process). `replacements` rewrite its source first (its imports of modules loaded the
    same way)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],  # noqa: S603, S607
                            check=True, capture_output=True, text=True).stdout
    for old, new in (replacements or {}).items():
        source = source.replace(old, new)
    file = scratch / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
