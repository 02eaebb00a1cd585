"""The test fixtures' own promises that a developer relies on."""

from __future__ import annotations

import subprocess
import time

from tests.fixtures.emulators import watch


def test_a_shared_emulator_stops_when_the_run_that_owns_it_dies() -> None:
    """A test run killed before it can stop its shared DynamoDB Local (SIGTERM, SIGKILL) must not
    leave the emulator running: its watchdog stops it once the owner is gone, and not before."""
    owner = subprocess.Popen(["sleep", "60"])
    emulator = subprocess.Popen(["sleep", "60"])
    dog = watch(owner.pid, emulator.pid)
    try:
        time.sleep(1.5)
        assert emulator.poll() is None, "stopped while its owner still ran"
        owner.kill()
        owner.wait()
        assert emulator.wait(timeout=10) != 0  # ended by the watchdog's signal
        assert dog.wait(timeout=10) == 0
    finally:
        for proc in (owner, emulator, dog):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
