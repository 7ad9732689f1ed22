"""How many CPU threads a fit computes with: one per core the rest of the machine leaves free.

A fit makes many small parallel operations per bin. With OpenMP's default wait policy a thread
spins at each barrier before it sleeps; when another process holds one of the cores, the
spinning threads and that process take turns and an epoch of the default Lorenz fit took 8 to 32
times as long (2 cores, one busy process; ``benchmarks/contention.py``). Letting threads sleep at
once (``OMP_WAIT_POLICY=PASSIVE``) cured that but made the lone fit 2.2 times slower, and one
thread always made it about 20 % slower. So a fit that was given no thread count measures, from ``/proc/stat``,
how many cores other processes kept busy during its last epoch, and computes the next one with
the cores left (at least one): all of them when it runs alone. Elsewhere than Linux it keeps
torch's count.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_STAT, SELF_STAT = Path("/proc/stat"), Path("/proc/self/stat")


def _ticks() -> tuple[int, int, int] | None:
    """``(busy, total)`` clock ticks of all cores since boot and this process's own
    ``utime + stime``; ``None`` where ``/proc`` cannot be read."""
    try:
        fields = [int(x) for x in PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
        own = SELF_STAT.read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (not guest)
    return total - idle, total, int(own[11]) + int(own[12])


class CoreShare:
    """The cores other processes kept busy between two calls of :meth:`others`."""

    def __init__(self, cores: int | None = None):
        self.cores = cores or os.cpu_count() or 1
        self.last = _ticks()

    def others(self) -> float | None:
        """Cores busy with other processes since the last call (or construction); ``None`` when
        unknown (no ``/proc``, or no time passed)."""
        now, last = _ticks(), self.last
        self.last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        busy, total, own = (a - b for a, b in zip(now, last))
        return max(0.0, (busy - own) / (total / self.cores))


def free_threads(others: float, cores: int) -> int:
    """Threads for ``cores`` cores of which others keep ``others`` busy: the free ones, rounded,
    at least 1."""
    return max(1, min(cores, round(cores - others)))


def use_threads(threads: int | None) -> int:
    """Compute with ``threads`` intra-op threads (``None``: keep torch's count); returns the
    number in use."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def adapt_threads(share: CoreShare) -> int:
    """Set torch's threads to :func:`free_threads` of what ``share`` saw since its last call
    (unchanged when it saw nothing); returns the number in use."""
    others = share.others()
    return use_threads(None if others is None else free_threads(others, share.cores))
