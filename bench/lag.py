"""Projection lag, sampled from the gateway's /metrics through a run: in events (the store's
latest notification id minus each projection's position, as /metrics computes it from the
tracking rows, so it is right whichever process projects) and in seconds of events (how long
ago the store held the last event a projection has applied).

The store's latest id at each sample is max(position + lag) over the projections, since
/metrics reports lag = max(latest - position, 0) and no position passes the latest id. The
seconds are read off that series: a projection at position P at time t is behind by t - t*,
where t* is when the latest id reached P (linearly interpolated between samples), so their
resolution is the sampling period.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
import time
from dataclasses import dataclass

import aiohttp

_GAUGE = re.compile(r'^ainfera_projection_(lag_events|position)\{projection="([^"]+)"\} (\S+)$',
                    re.M)


@dataclass(frozen=True)
class LagSample:
    at: float  # perf_counter, midway through the /metrics request
    lags: dict[str, int]
    positions: dict[str, int]

    @property
    def latest(self) -> int:
        return max((self.positions[n] + self.lags.get(n, 0) for n in self.positions),
                   default=0)

    @property
    def worst(self) -> tuple[int, str]:
        return max(((lag, name) for name, lag in self.lags.items()), default=(0, "-"))


async def read_lag(session: aiohttp.ClientSession, url: str) -> LagSample | None:
    sent = time.perf_counter()
    try:
        async with session.get(f"{url}/metrics") as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    at = (sent + time.perf_counter()) / 2
    lags: dict[str, int] = {}
    positions: dict[str, int] = {}
    for kind, name, value in _GAUGE.findall(text):
        (lags if kind == "lag_events" else positions)[name] = int(float(value))
    return LagSample(at, lags, positions) if lags else None


@dataclass
class LagSeries:
    samples: list[LagSample]

    def events_behind(self, since: float, until: float) -> tuple[int, str]:
        """The largest lag in events seen between two instants, and which projection."""
        return max((s.worst for s in self.samples if since <= s.at <= until),
                   default=(0, "-"))

    def seconds_behind(self, sample: LagSample) -> float:
        times = [s.at for s in self.samples if s.at <= sample.at]
        latests = [s.latest for s in self.samples if s.at <= sample.at]
        # The latest id never decreases; a sample taken out of order would, so keep it sorted.
        for i in range(1, len(latests)):
            latests[i] = max(latests[i], latests[i - 1])
        worst = 0.0
        for name, position in sample.positions.items():
            if sample.lags.get(name, 0) <= 0 or not latests:
                continue
            j = bisect.bisect_left(latests, position)
            if j == 0:
                reached = times[0]  # before the first sample: a lower bound on the lag
            elif j >= len(latests):
                continue
            else:
                span = latests[j] - latests[j - 1]
                part = (position - latests[j - 1]) / span if span else 1.0
                reached = times[j - 1] + part * (times[j] - times[j - 1])
            worst = max(worst, sample.at - reached)
        return worst

    def seconds_behind_max(self, since: float, until: float) -> float:
        return max((self.seconds_behind(s) for s in self.samples if since <= s.at <= until),
                   default=0.0)

    def event_rate(self, since: float, until: float) -> float:
        """Events per second the store took between two instants (from the latest ids)."""
        inside = [s for s in self.samples if since <= s.at <= until]
        if len(inside) < 2 or inside[-1].at <= inside[0].at:
            return 0.0
        return (inside[-1].latest - inside[0].latest) / (inside[-1].at - inside[0].at)


# A bound on one sampler besides its stop event: longer than any load of the bench.
MAX_SAMPLING_S = 3600.0


async def sample_until(url: str, stop: asyncio.Event, period: float,
                       series: LagSeries) -> None:
    """Appends a sample every `period` seconds until `stop` is set (or MAX_SAMPLING_S), over
    one connection of its own (the load's connections are not touched)."""
    timeout = aiohttp.ClientTimeout(total=10)
    deadline = time.perf_counter() + MAX_SAMPLING_S
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set() and time.perf_counter() < deadline:
            sample = await read_lag(session, url)
            if sample is not None:
                series.samples.append(sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)


async def time_to_zero(url: str, series: LagSeries, since: float, wait: float,
                       period: float = 0.05) -> float | None:
    """Seconds from `since` (a perf_counter instant: when the load stopped) until every
    projection's lag reads 0, samples appended to `series`; None when it is still behind
    after `wait` seconds."""
    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.perf_counter() - began < wait:
            sample = await read_lag(session, url)
            if sample is not None:
                series.samples.append(sample)
                if sample.worst[0] == 0:
                    return max(sample.at - since, 0.0)
            await asyncio.sleep(period)
    return None
