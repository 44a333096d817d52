"""The ship stage sees other processes' load on the CPU it times on, says so, and waits for it to settle first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fsmc.shipping.cpu_load import QUIET_SHARE, OtherLoad, load_notice, sample, wait_until_quiet


@pytest.fixture
def busy_cores():
    """One process spinning on every core, stopped after the test."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(os.sched_getaffinity(0)))]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_other_processes_spinning_on_every_core_are_measured_and_reported(busy_cores):
    with OtherLoad() as load:
        time.sleep(1.0)  # the measured window: this process idles, the spinners run
    # The spinners share this process's cores (an affinity mask or cpuset may leave out some of the machine's).
    allowed = len(os.sched_getaffinity(0)) / sample().cpus
    assert load.share is not None and load.share > 0.5 * allowed
    notice = load_notice(load.share, waited_share=load.share)
    assert len(notice) == 1 and f"{100 * load.share:.0f} % of the CPU" in notice[0] and "after waiting up to" in notice[0]
    # Waiting gives up after its bound and returns the share it last measured, which is not quiet.
    assert wait_until_quiet(max_seconds=0, poll=0.2) >= QUIET_SHARE


def test_an_idle_timing_has_nothing_to_report():
    assert load_notice(0.02, waited_share=0.01) == [] and load_notice(None, None) == []
