"""How many CPU threads a fit computes with: one per core the rest of the machine leaves free.

A fit makes many small parallel operations per bin. With OpenMP's default wait policy a thread
spins at each barrier before it sleeps; when another process holds one of the cores, the
spinning threads and that process take turns and an epoch of the default Lorenz fit took 8 to 32
times as long (2 cores, one busy process; ``benchmarks/contention.py``). Letting threads sleep at
once (``OMP_WAIT_POLICY=PASSIVE``) cured that but made the lone fit 2.2 times slower, and one
thread always made it about 20 % slower. So a fit that was given no thread count measures, from
``/proc/stat``, how many cores other processes kept busy during its last epoch, and computes the
next one with the cores left (at least one): all of them when it runs alone. The cores are those this process
may run on (its CPU affinity: a batch job's allocation, ``taskset``), at most ``OMP_NUM_THREADS``
where that is set. Elsewhere than Linux it keeps torch's count.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_STAT, SELF_STAT = Path("/proc/stat"), Path("/proc/self/stat")


def _ticks(cpus: frozenset[int] | None = None) -> tuple[int, int, int] | None:
    """``(busy, total)`` clock ticks since boot of the cores ``cpus`` (``None``: all) and this
    process's own ``utime + stime``; ``None`` where ``/proc`` cannot be read."""
    try:
        lines = PROC_STAT.read_text().splitlines()
        own = SELF_STAT.read_text().rsplit(")", 1)[1].split()
        rows = [line.split() for line in lines if line.startswith("cpu")]
        rows = ([row for row in rows[1:] if int(row[0][3:]) in cpus] if cpus is not None
                else rows[:1])  # the first line sums all cores
        fields = [sum(int(row[i]) for row in rows) for i in range(1, 9)]
        own_ticks = int(own[11]) + int(own[12])
    except (OSError, ValueError, IndexError):
        return None
    if not rows:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    total = sum(fields)  # user nice system idle iowait irq softirq steal (not guest)
    return total - idle, total, own_ticks


def own_cpus() -> frozenset[int] | None:
    """The cores this process may run on (its affinity), ``None`` where unknown."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def thread_limit() -> int | None:
    """``OMP_NUM_THREADS`` where it is set to a whole number of at least 1, else ``None``."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


class CoreShare:
    """The cores other processes kept busy between two calls of :meth:`others`, of the cores
    ``cpus`` (default this process's, :func:`own_cpus`)."""

    def __init__(self, cpus: frozenset[int] | None = None):
        self.cpus = cpus if cpus is not None else own_cpus()
        self.cores = len(self.cpus) if self.cpus else os.cpu_count() or 1
        self.last = _ticks(self.cpus)

    def others(self) -> float | None:
        """Cores busy with other processes since the last call (or construction); ``None`` when
        unknown (no ``/proc``, or no time passed)."""
        now, last = _ticks(self.cpus), self.last
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
    """Set torch's threads to :func:`free_threads` of what ``share`` saw since its last call,
    at most :func:`thread_limit` (unchanged when it saw nothing); returns the number in use."""
    others = share.others()
    if others is None:
        return use_threads(None)
    return use_threads(min(free_threads(others, share.cores), thread_limit() or share.cores))
