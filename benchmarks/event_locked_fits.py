"""Fits on sparse event-locked sessions the defaults were not tuned on (run by hand)::

    OMP_NUM_THREADS=1 uv run python benchmarks/event_locked_fits.py --folder event-locked

Writes (once) the four sessions of README's "How the defaults were chosen" as spike files under
``--folder`` (:func:`pyrolf.data.event_locked_dataset`: seeds 0-3, 0.10-0.30 spikes per bin, other
frequencies and decays), then fits each with ``pyrolf fit`` for every setting of ``--runs``
(``default``; ``meanfield``: ``--guide meanfield``; ``fixed``: the defaults with Δ, γ and σ
fixed instead of learned; ``before``: the defaults before issue 14, the ``oscillators`` potential
with KL weight 0.3 and fixed Δ, γ, σ; ``kl0.01``: the defaults with KL weight 0.01;
``batch16``: batches of 16 trials; ``kl0.01_batch16``: both) and prints one line per fit: test
co-bps and rates R², the smoothing baseline's co-bps and what the true rates score on the same
test trials. ``--sessions small`` is a small lab session (120 trials of 24 neurons, 0.05 spikes
per bin), for README's "Small sessions"::

    uv run python benchmarks/event_locked_fits.py --folder small --sessions small \
        --runs default kl0.01 batch16 kl0.01_batch16 -- --epochs 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from pyrolf.data import event_locked_dataset, load_spike_file, save_spike_file
from pyrolf.evaluation.report import score_rates

SESSIONS = {
    "s0_15": dict(seed=0, mean_rate=0.15),
    "s1_15": dict(seed=1, mean_rate=0.15, frequencies=(1.5, 4.0), decay=0.5),
    "s2_10": dict(seed=2, mean_rate=0.10, frequencies=(2.5, 3.0), decay=0.25, amplitude=1.8),
    "s3_30": dict(seed=3, mean_rate=0.30, frequencies=(3.0, 5.0), decay=0.3, amplitude=1.4),
    "small": dict(seed=4, mean_rate=0.05, trials_per_condition=15, n_neurons=24, n_heldout=5),
}
# each run: options of pyrolf fit, and the settings of its --config file (none when empty)
RUNS = {
    "default": ([], {}),
    "meanfield": (["--guide", "meanfield"], {}),
    "fixed": ([], {"learn_dynamics": False}),
    "before": (["--potential", "oscillators"], {"kl_weight": 0.3, "learn_dynamics": False}),
    "kl0.01": (["--kl-weight", "0.01"], {}),
    "batch16": (["--batch-size", "16"], {}),
    "kl0.01_batch16": (["--kl-weight", "0.01", "--batch-size", "16"], {}),
}
PYROLF = "from pyrolf.cli.main import main; main()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("event-locked"))
    parser.add_argument("--sessions", nargs="+", default=[name for name in SESSIONS
                                                           if name != "small"],
                        choices=list(SESSIONS))
    parser.add_argument("--runs", nargs="+", default=["default", "meanfield", "fixed", "before"],
                        choices=list(RUNS))
    parser.add_argument("fit_options", nargs="*", help="options passed to pyrolf fit (after --)")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    options = {}
    for run in args.runs:
        flags, settings = RUNS[run]
        if settings:
            config = args.folder / f"{run}.json"
            config.write_text(json.dumps(settings))
            flags = [*flags, "--config", str(config)]
        options[run] = flags
    for name in args.sessions:
        path = args.folder / f"{name}.h5"
        if not path.exists():
            save_spike_file(path, event_locked_dataset(**SESSIONS[name]))
        data = load_spike_file(path)
        test = data.splits["test"]
        truth = score_rates(data.rates[test], data, test)["co_bps"]
        for run in args.runs:
            out = args.folder / f"run-{name}-{run}"
            if not (out / "metrics.json").exists():
                subprocess.run([sys.executable, "-c", PYROLF, "fit", "--data", str(path),
                                "--out", str(out), "--quiet", *options[run], *args.fit_options],
                               check=True)
            m = json.loads((out / "metrics.json").read_text())
            print(f"{name} {run:9s} co_bps={m['co_bps']:.4f} rates_r2={m['rates_r2']:.4f} "
                  f"smoothing_co_bps={m['smoothing_co_bps']:.4f} true_co_bps={truth:.4f} "
                  f"collapsed={m['collapsed']}", flush=True)


if __name__ == "__main__":
    main()
