"""Seconds before ``pyrolf`` answers: ``pyrolf --help``, ``pyrolf fit --help``, ``import pyrolf``.

Run by hand (not in CI), on an otherwise idle machine::

    uv run python benchmarks/startup.py            # 7 runs of each
    uv run python benchmarks/startup.py --runs 15

Each figure is the median wall time of ``--runs`` fresh processes, after one untimed run that
brings the files into the page cache. ``pyrolf --help`` and ``pyrolf fit --help`` run the console
script installed beside this Python, as a user (or a shell's Tab completion) does; a mistyped
option or a bad setting answers as fast. ``import torch`` alone is timed for scale. Without
bytecode files (``PYTHONDONTWRITEBYTECODE`` set, and a venv installed without compiling them)
every import compiles its source and every figure is more than twice as large. The last line reads
``help=X fit_help=Y import=Z torch=W`` (seconds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def seconds(command: list[str], runs: int) -> float:
    """Median wall seconds of ``runs`` fresh runs of ``command``, after one untimed run."""
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    args = parser.parse_args()
    script = Path(sys.executable).parent / "pyrolf"
    if not script.exists():
        sys.exit(f"no console script {script}: install pyrolf in this Python's environment")
    commands = {"help": ([str(script), "--help"], "pyrolf --help"),
                "fit_help": ([str(script), "fit", "--help"], "pyrolf fit --help"),
                "import": ([sys.executable, "-c", "import pyrolf"], "python -c 'import pyrolf'"),
                "torch": ([sys.executable, "-c", "import torch"], "python -c 'import torch'")}
    figures = {}
    for name, (command, shown) in commands.items():
        figures[name] = seconds(command, args.runs)
        print(f"{shown:28s} {figures[name]:6.2f} s", flush=True)
    print(" ".join(f"{name}={value:.2f}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
