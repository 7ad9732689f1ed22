"""Seconds per epoch of the default Lorenz fit alone and on a shared CPU, old and new threading.

    uv run python benchmarks/contention.py [--epochs 6]

For each threading — ``old``: torch's count, one thread per core, whatever else runs (what pyrolf
did before :mod:`pyrolf.threads`; ``threads`` set to the core count), ``new``: pyrolf's default
(``threads`` unset: the cores other processes leave free, checked every epoch) — a fresh process
trains the default Lorenz flow with ``Trainer.fit`` (what ``pyrolf fit`` runs) for ``--epochs``
epochs, first alone, then beside one busy loop per core but one, which this script starts and
stops itself. Each figure is the median epoch without the first (Pyro's checks, warm-up) and the
last (it validates). Run it on an otherwise idle machine. The last line reads
``alone=A shared=S ratio=S/A`` for the new threading, then the new alone time over the old.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, os, sys
import torch
from pyrolf.config import Config
from pyrolf.data import lorenz_dataset
from pyrolf.inference.svi import Trainer
from pyrolf.models import build_flow
epochs, threading = int(sys.argv[1]), sys.argv[2]
threads = os.cpu_count() if threading == "old" else None
data = lorenz_dataset()
config = Config(epochs=epochs, eval_every=10**6, threads=threads)
if threads is not None:
    torch.set_num_threads(threads)
trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
history = trainer.fit(progress=False).history
print(json.dumps({"seconds": [r["seconds"] for r in history], "threads": torch.get_num_threads()}))
"""
BUSY = "while True: pass"


def epoch_seconds(threading: str, epochs: int, busy: int) -> tuple[float, int]:
    """Median seconds per epoch (first and last dropped) of a fresh process, and torch's
    thread count at its end."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    loops = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(epochs), threading], env=environ,
                             capture_output=True, text=True, check=True).stdout
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    result = json.loads(out.strip().splitlines()[-1])
    return statistics.median(result["seconds"][1:-1]), result["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per measurement (>= 3)")
    args = parser.parse_args()
    busy = max((os.cpu_count() or 1) - 1, 1)
    print(f"cores={os.cpu_count()} busy_loops={busy} epochs={args.epochs}")
    print(f"{'threading':10s} {'threads':>7s} {'alone s':>9s} {'shared s':>9s} {'ratio':>7s}")
    figures = {}
    for threading in ("old", "new"):
        alone, threads = epoch_seconds(threading, args.epochs, 0)
        shared, _ = epoch_seconds(threading, args.epochs, busy)
        figures[threading] = alone, shared
        print(f"{threading:10s} {threads:7d} {alone:9.3f} {shared:9.3f} {shared / alone:7.2f}",
              flush=True)
    alone, shared = figures["new"]
    print(f"alone={alone:.3f} shared={shared:.3f} ratio={shared / alone:.2f} "
          f"new_alone/old_alone={alone / figures['old'][0]:.3f}")


if __name__ == "__main__":
    main()
