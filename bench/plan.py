"""How long each piece of `make bench` runs. The defaults give the figures of record (the report
states the whole run's wall time; estimated at 8 to 10 minutes on a 2-core box, not yet timed
on a quiet one); `--quick` is a smoke test of the harness, whose figures are not to be quoted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool = False
    duration: float = 6.0  # seconds counted per load row
    warmup: float = 1.0  # seconds of load before each row, not counted
    concurrency: tuple[int, ...] = (1, 64)
    lag_duration: float = 30.0  # the 64-connection load whose projection lag is reported
    lag_concurrency: int = 64
    lag_period: float = 0.25  # seconds between /metrics samples during a load
    catch_up_timeout: float = 120.0  # how long to wait for the lag to reach 0 after a load
    ttfb_n: int = 200
    ttfb_concurrent_n: int = 192
    ttfb_concurrency: int = 16
    first_byte_delay: float = 0.05
    chunk_delay: float = 0.001
    commit_duration: float = 4.0
    verify_wait: float = 600.0  # `ainfera verify` on each gateway's store after its rows

    @classmethod
    def short(cls) -> Plan:
        return cls(quick=True, duration=2.0, warmup=0.5, lag_duration=5.0, catch_up_timeout=60.0,
                   ttfb_n=30, ttfb_concurrent_n=32, commit_duration=1.0,
                   verify_wait=180.0)
