"""The NLB submission file and its official scores (nlb_tools ``save_to_h5`` and ``evaluate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nlb_tools.evaluation import evaluate
from nlb_tools.make_tensors import save_to_h5

from pyrolf.data.nlb import NLBSplit
from pyrolf.data.nlb_compat import nlb_tools_context, save_targets
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.evaluation.metrics import co_bps, persistence_rates
from pyrolf.evaluation.report import co_bps_by_unit, heldout_co_bps
from pyrolf.evaluation.smoothing import smoothing_baseline
from pyrolf.runs import RunFolder

#: nlb_tools' metric names -> the keys of metrics.json
METRIC_KEYS = {"co-bps": "co_bps", "vel R2": "vel_r2", "psth R2": "psth_r2", "fp-bps": "fp_bps",
               "tp corr": "tp_corr"}


def submission(rates: np.ndarray, data: SpikeData) -> dict:
    """The submission dict ``{key: {train_rates_heldin, ..., eval_rates_heldout_forward}}``.

    Args:
        rates: predicted rates in spikes per bin of every trial of ``data``
            ``(trials, observed + forward bins, neurons)``, held-in neurons first.
        data: an NLB :class:`SpikeData` (from :func:`pyrolf.data.nlb.load_nlb`).
    """
    split: NLBSplit = data.extra["nlb"]
    rates = np.asarray(rates, dtype=np.float32)
    observed, forward = slice(0, data.n_observed), slice(data.n_observed, None)
    heldin, heldout = data.heldin, data.heldout
    train, evaluation = rates[:split.n_train], rates[split.n_train:]
    return {split.key: {
        "train_rates_heldin": train[:, observed][..., heldin],
        "train_rates_heldout": train[:, observed][..., heldout],
        "eval_rates_heldin": evaluation[:, observed][..., heldin],
        "eval_rates_heldout": evaluation[:, observed][..., heldout],
        "eval_rates_heldin_forward": evaluation[:, forward][..., heldin],
        "eval_rates_heldout_forward": evaluation[:, forward][..., heldout],
    }}


def write_h5(path: Path, save) -> None:
    """``save(image)`` (an nlb_tools ``save_to_h5``, which h5py lets write to a file object)
    into an HDF5 image in memory, written as ``path`` by :meth:`RunFolder.write_image`: an
    interrupted write never leaves a half file, and a full disk is one ``OSError``."""
    RunFolder(path.parent).write_image(path.name, save)


def save_submission(submission_dict: dict, path: Path) -> None:
    """Write ``submission.h5`` atomically in nlb_tools' ``save_to_h5`` layout."""
    write_h5(path, lambda image: save_to_h5(submission_dict, image))


def keep_targets(split: NLBSplit, path: Path) -> None:
    """Keep the evaluation targets made from the data in ``path`` (a run folder's
    ``eval_targets.h5``, nlb_tools' layout at full precision), or read them from there when it
    holds them: a resumed run takes seconds where making MC_Maze's PSTHs takes minutes. A file that
    cannot be read is made again; targets read from the published file are not copied."""
    if split.targets_file is None and path.exists():
        split.targets_file = path
        try:
            split.targets()
            return
        except DataError:
            split.targets_file = None
            path.unlink()
    targets = split.targets()
    if split.targets_file is None and targets is not None:
        write_h5(path, lambda image: save_targets(targets, image))


#: the MC_Maze scaling sets, which nlb_tools scores under one ``mc_maze_scaling[_20]_split``
SCALING = ("mc_maze_large", "mc_maze_medium", "mc_maze_small")


def score(submission_dict: dict, targets: dict, key: str) -> dict:
    """nlb_tools' ``evaluate`` of one dataset, as ``{co_bps, vel_r2, psth_r2, fp_bps, tp_corr}``
    (those the dataset has). nlb_tools files the MC_Maze scaling sets (``mc_maze_small``,
    ``_medium``, ``_large``) under ``mc_maze_scaling[_20]_split``, each metric's name led by the
    set's training-trial count (``[100] co-bps``); they are read from there."""
    with nlb_tools_context():
        results = evaluate(targets, submission_dict)
    found = {name: values for entry in results for name, values in entry.items()}
    scores = found.get(f"{key}_split")
    if scores is None and key.removesuffix("_20") in SCALING:
        scaling = found.get("mc_maze_scaling_20_split" if key.endswith("_20")
                            else "mc_maze_scaling_split")
        scores = None if scaling is None else {name.split("] ", 1)[-1]: value
                                               for name, value in scaling.items()}
    if scores is None:
        raise DataError(f"nlb_tools returned no scores for {key}: the targets are not of "
                        f"{key}; give the targets file (eval_data_test.h5) of this dataset and "
                        "bin size")
    return {METRIC_KEYS.get(name, name): float(value) for name, value in scores.items()}


def nlb_metrics(rates: np.ndarray, data: SpikeData, submission_path: Path | None = None,
                progress: bool = False, kept_smoothing: Path | None = None) -> dict:
    """Official metrics of ``rates`` (see :func:`submission`), ``co_bps_per_neuron`` (nlb_tools'
    formula for each held-out neuron alone, see
    :func:`~pyrolf.evaluation.report.co_bps_by_unit`) and two baselines on the same evaluation
    trials: ``smoothing_co_bps`` (and per neuron), the Gaussian-smoothing baseline's co-bps, and
    ``persistence_fp_bps``, the fp-bps of each trial's last observed bin of ``rates`` held over
    the forward window (:func:`~pyrolf.evaluation.metrics.persistence_rates`). Writes the
    submission to ``submission_path`` when given; ``progress``: a bar of the baseline's fits,
    ``kept_smoothing``: a file keeping them (see
    :func:`~pyrolf.evaluation.smoothing.smoothing_baseline`).
    A test-phase fit without a targets file is not scored: its metrics name the phase and the
    evaluation trials, and give the smoothing baseline's best co-bps on the validation trials,
    ``smoothing_valid_co_bps``, what the fit's ``valid_co_bps`` compares with."""
    split: NLBSplit = data.extra["nlb"]
    submitted = submission(rates, data)
    if submission_path is not None:
        save_submission(submitted, submission_path)
    metrics = {"phase": split.phase, "eval_trials": len(data.splits["test"])}
    targets = split.targets()
    baseline = smoothing_baseline(data, progress=progress, kept=kept_smoothing)
    metrics["smoothing_width_bins"] = baseline["width"]
    if targets is None:
        metrics["smoothing_valid_co_bps"] = baseline["valid_co_bps"][baseline["width"]]
        return metrics
    metrics.update(score(submitted, targets, split.key))
    spikes = targets[split.key]["eval_spikes_heldout"]
    metrics["co_bps_per_neuron"] = co_bps_by_unit(submitted[split.key]["eval_rates_heldout"],
                                                  spikes, data)
    eval_heldout = baseline["rates"][split.n_train:][..., data.heldout]
    metrics.update(heldout_co_bps(eval_heldout, spikes, data, prefix="smoothing_"))
    metrics["persistence_fp_bps"] = persistence_fp_bps(submitted[split.key], targets[split.key])
    return metrics


def persistence_fp_bps(submitted: dict, targets: dict) -> float:
    """fp-bps (nlb_tools' formula: all neurons, held in then held out) of one dataset's
    submission (see :func:`submission`) with each evaluation trial's last observed bin held over
    the forward window, against ``targets``' forward spikes."""
    def neurons(suffix: str) -> np.ndarray:
        return np.concatenate([submitted[f"eval_rates_heldin{suffix}"],
                               submitted[f"eval_rates_heldout{suffix}"]], 2)

    rates = np.concatenate([neurons(""), neurons("_forward")], 1)
    spikes = np.concatenate([targets["eval_spikes_heldin_forward"],
                             targets["eval_spikes_heldout_forward"]], 2)
    return co_bps(persistence_rates(rates, spikes.shape[1]), spikes)
