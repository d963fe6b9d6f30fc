"""The one process that drives sweeps on a warehouse: its lock, and how others reach it.

`rnnsweep submit` holds an exclusive lock file beside the warehouse for as long as it runs
(two drivers would train the same trials twice) and writes its pid and sweep into it.
`rnnsweep cancel` reads that to interrupt the right driver, by pid, the way Ctrl-C does.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnsweep.service.errors import UserError


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".driver.lock")


@contextmanager
def driver_lock(warehouse: Path, sweep: str) -> Iterator[None]:
    """Hold the warehouse's driver lock, or fail in one line naming who holds it."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(warehouse), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(f)
            who = f"pid {holder.get('pid')}, sweep {holder.get('sweep')}" if holder else "another process"
            raise UserError(
                f"{warehouse}: another rnnsweep submit ({who}) is running on this warehouse; "
                "wait for it, `rnnsweep cancel` it, or use --warehouse"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "sweep": sweep}))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(f) -> dict:
    f.seek(0)
    try:
        return json.loads(f.read() or "{}")
    except json.JSONDecodeError:
        return {}


def running_driver(warehouse: Path) -> dict | None:
    """{"pid": ..., "sweep": ...} of the driver holding the lock, or None when none does."""
    path = lock_path(warehouse)
    if not path.exists():
        return None
    with open(path, "r+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(f) or {"pid": None, "sweep": None}
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


def interrupt_driver(warehouse: Path, sweep: str, wait: float = 60.0) -> bool:
    """Interrupt the driver running `sweep` (as Ctrl-C would) and wait for it to let go.

    Returns False when no driver runs that sweep; raises when it does not stop in time.
    """
    driver = running_driver(warehouse)
    if driver is None or driver.get("sweep") != sweep or not driver.get("pid"):
        return False
    os.kill(driver["pid"], signal.SIGINT)
    deadline = time.monotonic() + wait
    while running_driver(warehouse) is not None:
        if time.monotonic() > deadline:
            raise UserError(f"the driver of sweep {sweep} (pid {driver['pid']}) did not stop within {wait:g} s")
        time.sleep(0.2)
    return True
