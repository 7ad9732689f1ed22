"""Does a short session gain from a long one it shares dynamics with? (run by hand, one fit after
another)::

    OMP_NUM_THREADS=1 python benchmarks/sessions.py --folder sessions -- --epochs 150

Writes two planted sessions (:mod:`pyrolf.data.recording_synthetic`, spike-times ``.npz``) driven
by the same latent dynamics (the oscillators :data:`~pyrolf.data.recording_synthetic.CHANNELS`)
through different neurons: a short one (``--short`` trials, ``--short-units`` units) and a long
one (``--long`` trials, ``--long-units`` units). Fits the short session alone and both together
(``pyrolf fit --data short.npz --data long.npz``), with the same options (after ``--``), so the
short session has the same held-out units and test trials in both; then the short session alone
again for as many SVI steps as the joint fit took (more epochs: it has fewer batches per epoch),
so that more training alone cannot explain a gain; and the short session alone started from a
fit of the long session alone (``--init-from``: its weights but each neuron's own), as many
epochs as the first. Prints, for the short session's test trials, each run's rates R² against
the planted rates (from its predictions: :func:`pyrolf.load_run`,
:func:`pyrolf.models.session_flow`), its co-bps, epochs and steps; last line
``alone=A together=T alone_as_many_steps=S from_long=F`` (rates R²).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyro

from own_recording import pyrolf_in_process  # a script beside this one
from pyrolf import load_run
from pyrolf.data.recording_synthetic import simulate_recording, write_spike_times_npz
from pyrolf.data.sessions import session_data
from pyrolf.evaluation.metrics import rates_r2
from pyrolf.evaluation.report import model_rates
from pyrolf.inference.svi import steps_per_epoch
from pyrolf.models import session_flow


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("sessions"))
    parser.add_argument("--short", type=int, default=60)
    parser.add_argument("--short-units", type=int, default=30)
    parser.add_argument("--long", type=int, default=240)
    parser.add_argument("--long-units", type=int, default=40)
    parser.add_argument("--window", default="-0.2,0.8")
    parser.add_argument("--bin", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("fit_options", nargs="*", help="pyrolf fit options (after --), e.g. "
                        "--epochs 150")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    short = simulate_recording(args.short, args.short_units, seed=args.seed)
    files = {"short": write_spike_times_npz(args.folder / "short.npz", short),
             "long": write_spike_times_npz(args.folder / "long.npz",
                                           simulate_recording(args.long, args.long_units,
                                                              seed=args.seed + 1))}
    cut = ["--align", "stim_on_time", f"--window={args.window}", "--bin", str(args.bin),
           *args.fit_options]
    alone, together = ["--data", str(files["short"])], ["--data", str(files["short"]),
                                                         "--data", str(files["long"])]
    long = args.folder / "run-long"
    if not (long / "metrics.json").exists():
        seconds = pyrolf_in_process("fit", "--data", str(files["long"]), *cut, "--out",
                                    str(long), "--quiet")
        print(f"fitted the long session alone in {seconds:.0f} s")
    results = {}
    for name, data_options in (("alone", alone), ("together", together),
                               ("alone_as_many_steps", alone),
                               ("from_long", [*alone, "--init-from", str(long)])):
        run = args.folder / f"run-{name}"
        more = []  # the last --epochs counts
        if name == "alone_as_many_steps":  # the steps of the joint fit: more epochs
            more = ["--epochs", str(results["together"]["steps"] // (
                results["alone"]["steps"] // results["alone"]["epochs"]))]
        if not (run / "metrics.json").exists():
            seconds = pyrolf_in_process("fit", *data_options, *cut, *more, "--out", str(run),
                                        "--quiet")
            print(f"fitted {name} in {seconds:.0f} s")
        results[name] = _scored(run, short, args.bin)
    print(json.dumps(results, indent=2))
    print("  ".join(f"{name}={scores['rates_r2']:.4f}" for name, scores in results.items()))
    return results


def _scored(run: Path, short, bin_ms: int) -> dict:
    """The short session's test-trial scores in ``run`` (a run of it alone, or with the long
    one): rates R² against the planted rates ``short``, co-bps, epochs and SVI steps."""
    flow, config, data = load_run(run)
    metrics = json.loads((run / "metrics.json").read_text())
    steps = metrics["epochs"] * steps_per_epoch(data, config.batch_size)
    if "sessions" in metrics:
        flow, data = session_flow(flow, data, "short"), session_data(data, "short")
        metrics = {**metrics["sessions"]["short"], "epochs": metrics["epochs"]}
    test = data.splits["test"]
    starts = data.extra["align_times"][test] + data.extra["window"][0]
    pyro.set_rng_seed(config.seed)
    rates = model_rates(flow, data, test, config.samples, config.device)
    return {"rates_r2": rates_r2(rates, short.binned_rates(starts, data.n_bins, bin_ms)),
            "co_bps": metrics["co_bps"], "smoothing_co_bps": metrics["smoothing_co_bps"],
            "test_trials": len(test), "train_trials": len(data.splits["train"]),
            "epochs": metrics["epochs"], "steps": steps}


if __name__ == "__main__":
    main()
