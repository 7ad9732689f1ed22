"""How much memory this process can still take: what ``diagnose`` checks its draws and ``infer``
its summaries against (:func:`check_fits`), what a continuous recording's counts must fit in and
what decides whether nlb_tools smooths on threads (Linux; elsewhere nothing is known)."""

from __future__ import annotations

from pathlib import Path

MEMINFO, CGROUP = Path("/proc/meminfo"), Path("/sys/fs/cgroup")


def available_memory() -> float | None:
    """Bytes of memory this process can still take without swapping: Linux' ``MemAvailable``,
    or less where the process's cgroup (v2: a container, a batch job) allows less; ``None``
    where the system does not say."""
    try:
        lines = [line.split() for line in MEMINFO.read_text().splitlines()
                 if line.startswith("MemAvailable:")]
    except OSError:
        return None
    if not lines:
        return None
    available = float(lines[0][1]) * 1024
    try:  # memory.max is "max" where the cgroup sets no limit
        left = (float((CGROUP / "memory.max").read_text())
                - float((CGROUP / "memory.current").read_text()))
    except (OSError, ValueError):
        return available
    return min(available, left)


def check_fits(needed: float, what: str, advice: str, error: type[Exception] | None = None
               ) -> None:
    """Raise ``error`` (:class:`~pyrolf.config.ConfigError` unless given; the data's
    :class:`~pyrolf.data.spikes.DataError` where the data ask too much) where ``needed`` bytes,
    what ``what`` takes (e.g. ``"the draws of 300 trials x 100 samples"``), are more than
    :func:`available_memory`, in one line ending with ``advice``: said before the work, not
    killed for memory in it. Nothing is checked where the memory available is unknown."""
    if error is None:
        from pyrolf.config import ConfigError as error

    available = available_memory()
    if available is not None and needed > available:
        raise error(f"{what} take {needed / 2**30:.3g} GiB, more than the "
                    f"{available / 2**30:.3g} GiB of memory available; {advice}")
