"""How much of the CPU other processes take while fsmc times models, and waiting for them to settle first.

Latency is measured on the machine that ships, which is rarely idle: on two cores, a Prefect server still busy
with a burst of task-run events, a test suite winding down or a neighbour on the same host takes a share of
the cores a timing needs. Timing teacher and student alternately keeps their ratio fair, but the runtime's thread
count is chosen by those timings (two threads lose most when one core is taken), and the absolute times are what
a user reads. So the ship stage waits, for a bounded time, until other processes leave the CPU idle, measures what
they took during the timing, and says so when it was enough to matter.

Linux only (``/proc/stat``); elsewhere nothing is measured and nothing waits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

QUIET_SHARE = 0.10  # other processes using less than this share of all cores leave a timing undisturbed
NOTICEABLE_SHARE = 0.20  # a share above this during a timing is reported beside its figures
# The longest the ship stage waits for a quiet CPU before timing anyway (and saying so): a burst (a server's events)
# settles within seconds, a sustained job (a second run, a test suite) does not settle by waiting. At 30 s the
# test suite, two runs at a time on 2 cores, took 4 minutes longer.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class CpuSample:
    """Busy CPU seconds of the whole machine and of this process at one moment, the wall clock, and the CPUs the
    machine's figure sums over."""

    machine_busy: float
    own: float
    wall: float
    cpus: int


def sample() -> CpuSample | None:
    """The machine's busy CPU seconds (``/proc/stat``: all but idle and iowait, steal included) and this process's
    (``os.times``, every thread), or None where ``/proc/stat`` is absent."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = [int(value) for value in lines[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    cpus = sum(1 for line in lines if line[:3] == "cpu" and line[3:4].isdigit())  # the per-CPU lines the first one sums
    times = os.times()
    return CpuSample((sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), times.user + times.system, time.monotonic(), max(cpus, 1))


def others_share(start: CpuSample | None, end: CpuSample | None) -> float | None:
    """The share of all cores that processes other than this one kept busy between two samples (0 to 1)."""
    if start is None or end is None or end.wall <= start.wall:
        return None
    others = (end.machine_busy - start.machine_busy) - (end.own - start.own)
    return min(max(others / ((end.wall - start.wall) * end.cpus), 0.0), 1.0)


def wait_until_quiet(max_seconds: float = WAIT_SECONDS, quiet: float = QUIET_SHARE, poll: float = POLL_SECONDS) -> float | None:
    """Poll until other processes use less than ``quiet`` of the cores over ``poll`` seconds, for at most
    ``max_seconds``; returns the last share measured (None where it cannot be measured)."""
    deadline = time.monotonic() + max_seconds
    while True:
        before = sample()
        time.sleep(poll)  # the measuring window: this process idles while the others are counted
        share = others_share(before, sample())
        if share is None or share < quiet or time.monotonic() >= deadline:
            return share


class OtherLoad:
    """A block's share of the cores taken by other processes: ``with OtherLoad() as load: ...; load.share``."""

    def __init__(self) -> None:
        self.share: float | None = None
        self._start: CpuSample | None = None

    def __enter__(self) -> OtherLoad:
        self._start = sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.share = others_share(self._start, sample())


def load_notice(share: float | None, waited_share: float | None) -> list[str]:
    """A one-line notice when other processes took enough of the CPU during the timing to move its figures."""
    if share is None or share < NOTICEABLE_SHARE:
        return []
    waited = ""
    if waited_share is not None and waited_share >= QUIET_SHARE:
        waited = f" (still {100 * waited_share:.0f} % after waiting up to {WAIT_SECONDS:.0f} s for it to settle)"
    return [
        f"ship: other processes used {100 * share:.0f} % of the CPU while the runtimes were timed{waited}: teacher and "
        "student were timed alternately, so their ratio holds, but the absolute times and the thread count chosen may be "
        "off; `fsmc run` again on a quieter machine to confirm."
    ]
