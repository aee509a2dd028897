"""CPU time and peak RSS of the server process while the load runs (psutil)."""

from __future__ import annotations

import threading
from pathlib import Path


class ProcessProbe:
    """CPU time (psutil) and peak RSS of the server process.

    The peak of a level is exact on Linux where this user may reset the process's ``VmHWM`` (writing 5
    to ``/proc/<pid>/clear_refs``); elsewhere RSS is sampled every 50 ms while the level runs.
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self.process = psutil.Process(pid)
        self.rss_method = "sampled every 50 ms"
        self._peak = 0
        self._exact = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / 2**20

    def high_water_mark_mb(self) -> float | None:
        """``VmHWM`` (Linux): the peak RSS since the process started or since the last reset."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def start_sampling(self) -> None:
        self._peak = self.process.memory_info().rss
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._exact = self.high_water_mark_mb() is not None
        except OSError:
            self._exact = False
        if self._exact:
            self.rss_method = "VmHWM, reset at the start of each level (exact)"
            return
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.05):
                self._peak = max(self._peak, self.process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> float:
        """Peak RSS (MB) since ``start_sampling``."""
        if self._exact:
            return self.high_water_mark_mb() or float("nan")
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._peak = max(self._peak, self.process.memory_info().rss)
        return self._peak / 2**20
