"""Time to first byte, streamed: the gateway's added time between the upstream's first byte and
the client's, on both surfaces, against the same fake upstream called directly; and a check
that streaming is native (the client's first byte long before the upstream's last)."""

from __future__ import annotations

from typing import Any

from bench.common import FakeServer, Section, ms, percentile
from bench.loadgen import StreamTiming, streams
from bench.overhead import Run
from bench.plan import Plan
from bench.servers import Running
from bench.targets import Target, direct_chat, direct_messages, gateway_chat, gateway_messages

TTFB_NOTE = (
    "TTFB = client-side time from sending the request to the first body bytes; 1st word = "
    "to the bytes carrying the first generated word; added = gateway percentile minus "
    "direct percentile: everything the gateway puts between the upstream's first byte and "
    "ours (auth, routing, the write-ahead Routed commit, dispatch, priming, re-encoding).")


class TtfbBench:
    """Benchmark 2: client-side time to first byte, direct vs through the gateway."""

    def __init__(self, plan: Plan, run: Run[Any]) -> None:
        self.plan = plan
        self.run = run
        self.direct: dict[tuple[str, str], list[StreamTiming]] = {}
        self.section = Section(
            f"Time to first byte, streamed (upstream first_byte_delay "
            f"{plan.first_byte_delay * 1000:.0f} ms, chunk_delay {plan.chunk_delay * 1000:.0f} ms"
            ", 5-word reply)",
            ["surface", "path", "db", "mode", "n", "TTFB p50 ms", "TTFB p99 ms",
             "added p50 ms", "added p99 ms", "1st word p50 ms", "added 1st word p50 ms",
             "last byte p50 ms", "errors"],
        )

    def measure(self, surface: str, target: Target, db: str, direct: bool,
                concurrent: bool = True) -> None:
        modes = [("sequential", self.plan.ttfb_n, 1)]
        if concurrent:
            modes.append((f"{self.plan.ttfb_concurrency} concurrent",
                          self.plan.ttfb_concurrent_n, self.plan.ttfb_concurrency))
        for mode, n, conc in modes:
            timings: list[StreamTiming] = self.run(streams(target.url, target.headers,
                                                           target.body, n, conc))
            firsts = [t.first_byte for t in timings]
            tokens = [t.first_token for t in timings]
            errors = sum(t.status != 200 for t in timings)
            if direct:
                self.direct[(surface, mode)] = timings
                add50 = add99 = add_word = "baseline"
            else:
                base = self.direct[(surface, mode)]
                base_firsts = [t.first_byte for t in base]
                add50 = ms(percentile(firsts, 50) - percentile(base_firsts, 50))
                add99 = ms(percentile(firsts, 99) - percentile(base_firsts, 99))
                add_word = ms(percentile(tokens, 50)
                               - percentile([t.first_token for t in base], 50))
            self.section.add(surface, target.name, db, mode, len(timings),
                             ms(percentile(firsts, 50)), ms(percentile(firsts, 99)), add50,
                             add99, ms(percentile(tokens, 50)), add_word,
                             ms(percentile([t.last_byte for t in timings], 50)), errors)
            print(f"  TTFB {surface} {target.name} [{db}] {mode}: p50 "
                  f"{ms(percentile(firsts, 50))} ms p99 {ms(percentile(firsts, 99))} ms",
                  flush=True)

    def native_check(self, fake: FakeServer, gw: Running) -> None:
        """A slow stream (20 words, frames 50 ms apart): through the gateway the client's first
        byte must arrive long before the upstream sends its last."""
        fake.script_all(self.plan.first_byte_delay, 0.05, 20)
        try:
            checks = [
                ("messages", direct_messages(fake.base_url, True),
                 gateway_messages(gw.url, gw.key, "fake-claude", True)),
                ("chat", direct_chat(fake.base_url, True),
                 gateway_chat(gw.url, gw.key, "fake-gpt", True)),
            ]
            for surface, direct, through in checks:
                upstream: list[StreamTiming] = self.run(
                    streams(direct.url, direct.headers, direct.body, 3, 1))
                relayed: list[StreamTiming] = self.run(
                    streams(through.url, through.headers, through.body, 3, 1))

                def p50(timings: list[StreamTiming], what: str) -> float:
                    return percentile([getattr(t, what) for t in timings], 50)

                up_last, gw_first = p50(upstream, "last_byte"), p50(relayed, "first_byte")
                verdict = ("native: first byte long before the upstream's last"
                           if gw_first < up_last / 3 else "NOT native (buffered?)")
                self.section.notes.append(
                    f"native check ({surface}, {int(p50(upstream, 'frames'))} upstream frames "
                    f"50 ms apart, median of 3): direct first byte "
                    f"{ms(p50(upstream, 'first_byte'))} / first word "
                    f"{ms(p50(upstream, 'first_token'))} / last byte "
                    f"{ms(up_last)} ms; gateway first byte {ms(gw_first)} / first word "
                    f"{ms(p50(relayed, 'first_token'))} / last byte "
                    f"{ms(p50(relayed, 'last_byte'))} ms -> {verdict}")
        finally:
            fake.script_all(self.plan.first_byte_delay, self.plan.chunk_delay, 5)
