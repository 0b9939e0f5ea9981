"""The load sections of the report, built from the rows of one run: the headline (one line per
server under test), the issue 9 targets as measured, every row in detail, CPU per request by
process and thread, and the projection lag. Every ratio divides two figures of this run."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.common import Section
from bench.overhead import LagRun, Row

FLOOR = "floor"
PINNED = "gateway, pinned model (fake-claude)"
ROUTED = "gateway, routed (ainfera-inference)"
DIRECT = "direct to the fake upstream"
PG = "PostgreSQL + Redis"
SQLITE = "SQLite + in-process counters"


def litellm_name(version: str) -> str:
    return f"LiteLLM {version} (1 worker, no database)"


@dataclass
class Results:
    """Every row of the run, looked up by (name, store, concurrency)."""

    low: int
    high: int
    rows: list[Row] = field(default_factory=list)
    lag_runs: list[LagRun] = field(default_factory=list)
    floor_again: list[Row] = field(default_factory=list)  # re-measured last, for drift
    litellm: str = ""  # its display name when it ran

    def get(self, name: str, store: str, conc: int) -> Row | None:
        for row in self.rows:
            if row.name == name and row.store == store and row.conc == conc:
                return row
        return None

    def direct(self, conc: int) -> Row | None:
        return self.get(DIRECT, "-", conc)

    def floor(self, conc: int) -> Row | None:
        return self.get(FLOOR, "-", conc)

    def added_p50(self, row: Row) -> float:
        base = self.direct(row.conc)
        return row.p50 - base.p50 if base is not None else math.nan

    def vs_floor_rps(self, row: Row) -> float:
        floor = self.floor(row.conc)
        return row.rps / floor.rps if floor is not None and floor.rps else math.nan

    def vs_floor_added(self, row: Row) -> float:
        floor = self.floor(row.conc)
        if floor is None:
            return math.nan
        base = self.added_p50(floor)
        return self.added_p50(row) / base if base > 0 else math.nan

    def vs_litellm(self, row: Row) -> float:
        peer = self.get(self.litellm, "-", row.conc) if self.litellm else None
        return row.rps / peer.rps if peer is not None and peer.rps else math.nan

    def servers(self) -> list[tuple[str, str]]:
        """(name, store) of every server under test, in the order they ran, floor first."""
        seen: list[tuple[str, str]] = []
        for row in self.rows:
            if row.name != DIRECT and (row.name, row.store) not in seen:
                seen.append((row.name, row.store))
        # The floor, then the gateway on PostgreSQL + Redis (pinned, routed), then on SQLite,
        # then the peer.
        def rank(name_store: tuple[str, str]) -> tuple[int, int, int]:
            name, store = name_store
            if name == FLOOR:
                return (0, 0, 0)
            if name in (PINNED, ROUTED):
                return (1, store != PG, name == ROUTED)
            return (2, 0, 0)

        return sorted(seen, key=rank)


def _f(value: float, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:{spec}}{suffix}"


def _ms(seconds: float) -> str:
    return _f(seconds * 1000, ".1f")


def headline(res: Results, title: str) -> Section:
    lo, hi = res.low, res.high
    columns = ["target", "store", f"c{lo} req/s", f"c{lo} p50 ms", f"c{lo} added p50 ms",
               "added p50 vs floor's", f"c{hi} req/s", "share of floor req/s"]
    if res.litellm:
        columns.append("req/s vs LiteLLM")
    columns += [f"c{hi} p50 / p99 ms", f"c{hi} CPU ms/req (server + projector)", "errors"]
    section = Section(title, columns)
    for name, store in res.servers():
        low, high = res.get(name, store, lo), res.get(name, store, hi)
        cells: list[str] = [name, store]
        if low is not None:
            cells += [f"{low.rps:,.0f}", _ms(low.p50), _ms(res.added_p50(low)),
                      "1 (floor)" if name == FLOOR else _f(res.vs_floor_added(low), ".1f", "x")]
        else:
            cells += ["-"] * 4
        if high is not None:
            cells += [f"{high.rps:,.0f}",
                      "1 (floor)" if name == FLOOR else _f(res.vs_floor_rps(high), ".0%")]
            if res.litellm:
                cells.append(_f(res.vs_litellm(high), ".1f", "x"))
            cells += [f"{_ms(high.p50)} / {_ms(high.p99)}", _f(high.server_ms(), ".2f")]
        else:
            cells += ["-"] * (5 if res.litellm else 4)
        cells.append(str(sum(r.result.errors for r in (low, high) if r is not None)))
        section.add(*cells)
    return section


@dataclass
class Check:
    what: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def targets(res: Results) -> Section:
    """Issue 9's "Done when" items that one run of the bench can measure."""
    lo, hi = res.low, res.high
    checks: list[Check] = []
    pinned_hi, routed_hi = res.get(PINNED, PG, hi), res.get(ROUTED, PG, hi)
    pinned_lo = res.get(PINNED, PG, lo)
    if pinned_hi is not None:
        ratio = res.vs_floor_rps(pinned_hi)
        checks.append(Check(f"PG + Redis, pinned, c{hi}: share of the floor's req/s", ">= 50%",
                            _f(ratio, ".0%"), None if math.isnan(ratio) else ratio >= 0.5))
        peer = res.vs_litellm(pinned_hi)
        checks.append(Check(f"PG + Redis, pinned, c{hi}: times LiteLLM's req/s", ">= 10x",
                            _f(peer, ".1f", "x") if res.litellm else "not run (make bench-compare)",
                            None if math.isnan(peer) else peer >= 10))
    if pinned_hi is not None and routed_hi is not None and pinned_hi.rps:
        ratio = routed_hi.rps / pinned_hi.rps
        checks.append(Check(f"PG + Redis, routed vs pinned, c{hi}: req/s", ">= 85% (within 15%)",
                            _f(ratio, ".0%"), ratio >= 0.85))
    floor_lo = res.floor(lo)
    if pinned_lo is not None and floor_lo is not None:
        ratio = res.vs_floor_added(pinned_lo)
        checks.append(Check(f"PG + Redis, pinned, c{lo}: added p50 vs the floor's added p50",
                            "<= 2x", f"{_ms(res.added_p50(pinned_lo))} ms vs "
                            f"{_ms(res.added_p50(floor_lo))} ms = {_f(ratio, '.1f', 'x')}",
                            None if math.isnan(ratio) else ratio <= 2))
    for run in res.lag_runs:
        if run.row.store != PG:
            continue
        row = run.row
        checks.append(Check(f"PG + Redis, projection lag during the c{row.conc} load",
                            "<= 1 s of events", f"{row.lag_seconds:.2f} s "
                            f"({row.lag_events[0]:,} events)", row.lag_seconds <= 1.0))
        checks.append(Check("PG + Redis, lag back to 0 after the load", "<= 1 s",
                            _f(run.time_to_zero, ".2f", " s") if run.time_to_zero is not None
                            else "not within the wait", run.time_to_zero is not None
                            and run.time_to_zero <= 1.0))
        gw = row.cpu.ms_per("gateway", row.result.requests) if row.cpu else math.nan
        proj = run.projector_ms_per_inference()
        checks.append(Check("PG + Redis, projector CPU per inference vs the gateway's",
                            "<= 1/3", f"{_f(proj)} vs {_f(gw)} ms = {_f(proj / gw, '.2f')}",
                            None if math.isnan(proj / gw) else proj / gw <= 1 / 3))
    section = Section("Issue 9 targets, as measured in this run",
                      ["measure", "target", "this run", "met"])
    for check in checks:
        section.add(check.what, check.target, check.measured,
                    "-" if check.met is None else ("yes" if check.met else "**no**"))
    return section


def details(res: Results, title: str) -> Section:
    section = Section(title, ["target", "store", "conc", "req/s", "p50 ms", "p99 ms", "errors",
                              "share of floor req/s", "added p50 ms", "added p50 vs floor's",
                              "largest lag (events / s of events)", "CPU, share of one core"])
    for row in [*res.rows, *res.floor_again]:
        is_direct, is_floor = row.name == DIRECT, row.name == FLOOR
        lag = (f"{row.lag_events[0]:,} / {row.lag_seconds:.2f}"
               if row.server == "gateway" else "-")
        section.add(row.name if row not in res.floor_again else f"{row.name} (again, last)",
                    row.store, row.conc, f"{row.rps:,.0f}", _ms(row.p50), _ms(row.p99),
                    row.result.errors,
                    "-" if is_direct or is_floor else _f(res.vs_floor_rps(row), ".0%"),
                    "baseline" if is_direct else _ms(res.added_p50(row)),
                    "-" if is_direct or is_floor else _f(res.vs_floor_added(row), ".1f", "x"),
                    lag, row.cpu.describe_shares() if row.cpu else "-")
        if row.result.errors:
            section.notes.append(f"{row.name} [{row.store}] c{row.conc}: {row.result.errors} "
                                 f"errors, first: {row.result.first_error}")
    return section


PROCESSES = ("server", "projector", "loadgen", "fake")


def cpu_by_process(res: Results, title: str) -> Section:
    section = Section(title, ["target", "store", "conc", "requests", "server", "projector",
                              "loadgen", "fake", "server + projector"])
    labelled = [(row.name, row) for row in res.rows]
    labelled += [(f"{run.row.name} (lag run)", run.row) for run in res.lag_runs]
    for name, row in labelled:
        if row.cpu is None:
            continue
        n = row.result.requests
        server = row.cpu.ms_per(row.server, n) if row.server else math.nan
        projector = row.cpu.ms_per("projector", n) if "projector" in row.cpu.seconds else math.nan
        section.add(name, row.store, row.conc, f"{n:,}",
                    f"{row.server} {_f(server)}" if row.server else "-", _f(projector),
                    _f(row.cpu.ms_per("loadgen", n)), _f(row.cpu.ms_per("fake", n)),
                    _f(row.server_ms()))
    return section


def cpu_by_thread(res: Results, title: str, rows: Iterable[tuple[str, Row]]) -> Section:
    """`rows`: (how the table names the row, the row)."""
    section = Section(title, ["target", "store", "conc", "process", "thread", "ms/req",
                              "share of one core"])
    for name, row in rows:
        if row.cpu is None:
            continue
        for process, threads in row.cpu.threads.items():
            for thread, seconds in threads.items():
                if seconds <= 0:
                    continue
                label = "main (event loop)" if thread == "main" and process != "projector" \
                    else thread
                section.add(name, row.store, row.conc, process, label,
                            _f(seconds * 1000 / row.result.requests if row.result.requests
                               else math.nan),
                            _f(seconds / row.cpu.wall if row.cpu.wall else math.nan, ".0%"))
    return section


def lag(res: Results, title: str) -> Section:
    section = Section(title, ["store", "load", "req/s", "events/s written",
                              "largest lag during (events)", "projection",
                              "largest lag during (s of events)", "back to 0 after the load",
                              "projector CPU ms/inference (to lag 0)",
                              "gateway CPU ms/inference", "projector / gateway"])
    for run in res.lag_runs:
        row = run.row
        gw = row.cpu.ms_per("gateway", row.result.requests) if row.cpu else math.nan
        proj = run.projector_ms_per_inference()
        section.add(row.store, f"c{row.conc}, {row.result.elapsed:.0f} s", f"{row.rps:,.0f}",
                    f"{run.series.event_rate(run.began, run.ended):,.0f}",
                    f"{row.lag_events[0]:,}", row.lag_events[1], f"{row.lag_seconds:.2f}",
                    _f(run.time_to_zero, ".2f", " s") if run.time_to_zero is not None
                    else "not within the wait", _f(proj), _f(gw), _f(proj / gw))
        section.notes += run.notes
    return section
