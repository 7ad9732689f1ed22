"""NLB'21 datasets, as downloaded from the DANDI archive, cut into tensors by the official nlb_tools.

Files are found under a data folder (``--data-dir``, else ``$PYROLF_DATA``, else
:data:`~pyrolf.data.dandi.DEFAULT_DATA_DIR`) in the layout ``dandi download DANDI:<id>`` leaves there::

    <data dir>/000128/sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb
    <data dir>/000128/sub-Jenkins/sub-Jenkins_ses-full_desc-test_ecephys.nwb

Phases: ``val`` trains on NLB's ``train`` trials and predicts its ``val`` trials (scored locally);
``test`` trains on ``train`` + ``val`` and predicts ``test`` (scored with the published targets
file ``eval_data_test.h5`` when given). A seeded tenth of the training trials is kept aside for
early stopping.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from nlb_tools.make_tensors import (PARAMS, h5_to_dict, make_eval_input_tensors,
                                    make_eval_target_tensors, make_train_input_tensors)
from nlb_tools.nwb_interface import NWBDataset

from pyrolf.data.dandi import DANDISETS, data_dir, download_command, nwb_files
from pyrolf.data.nlb_compat import nlb_tools_context, resample, quiet_test_file_nans
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.names import NLB_BIN_SIZES_MS, NLB_PHASES

VALID_FRACTION = 0.1


@dataclass
class NLBSplit:
    """What scoring an NLB fit needs besides the spikes (kept in ``SpikeData.extra["nlb"]``).

    The first ``n_train`` trials of the ``SpikeData`` are NLB's training trials in nlb_tools'
    order, the rest its evaluation trials (``val`` or ``test``), whose held-out and forward
    spikes are unknown to the model (zeros in ``spikes``). ``trial_ids`` ``(trials,)``:
    nlb_tools' ``trial_id`` of each of them; ``unit_ids`` ``(neurons,)``: the NWB units table's
    id of each neuron (held-in first); ``train_file``: the train NWB file.
    """

    name: str
    bin_size_ms: int
    phase: str
    n_train: int
    dataset: NWBDataset
    targets_file: str | os.PathLike | None = None
    trial_ids: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    train_file: Path | None = None
    n_observed: int | None = None
    _targets: dict | None = field(default=None, init=False, repr=False)
    _scored: tuple = field(default=(), init=False, repr=False)

    @property
    def key(self) -> str:
        """The group name nlb_tools uses for this dataset and bin: ``mc_maze`` / ``mc_maze_20``."""
        return self.name if self.bin_size_ms == 5 else f"{self.name}_{self.bin_size_ms}"

    @property
    def alignment(self) -> tuple[str, float]:
        """Where nlb_tools cuts each trial (its ``make_params``): the trials table's field
        the trial is aligned to and the first bin's start in seconds from it (MC_Maze:
        ``("move_onset_time", -0.25)``); the forward bins follow the observed ones."""
        make = PARAMS[self.name]["make_params"]
        return make["align_field"], make["align_range"][0] / 1000

    @property
    def train_split(self):
        return "train" if self.phase == "val" else ["train", "val"]

    def targets(self) -> dict | None:
        """:func:`eval_targets` of this split from ``targets_file``, made or read once."""
        if self._targets is None:
            self._targets = eval_targets(self, self.targets_file)
        return self._targets

    def scored(self) -> np.ndarray | None:
        """:func:`scored_bins` of the training trials, cut once, when a score first needs them
        (a second pass of nlb_tools over the trials: infer and diagnose never do)."""
        if not self._scored:
            self._scored = (scored_bins(self, self.n_observed),)
        return self._scored[0]


def open_dataset(name: str, folder: Path, phase: str) -> tuple[NWBDataset, Path]:
    """The NWB file(s) of ``name`` as an ``NWBDataset`` at 1 ms (``val``: the train file only),
    and the train file."""
    train, test = nwb_files(name, folder)
    if phase == "test" and test is None:
        raise DataError(f"the test phase needs {train.parent}/*desc-test*.nwb; download the whole "
                        f"set: {download_command(name, folder)}")
    paths = [train] if phase == "val" else [train, test]
    for path in paths:
        try:
            with h5py.File(path, "r"):
                pass
        except OSError:
            raise DataError(f"{path} is not a readable HDF5/NWB file (truncated or corrupt "
                            f"download?); delete it and download again: "
                            f"{download_command(name, folder)}") from None
    try:
        with nlb_tools_context():
            return NWBDataset(str(train.parent), prefix="*desc-train" if phase == "val"
                              else ""), train
    except Exception as error:  # nlb_tools reports a wrong layout by whatever fails first
        raise DataError(f"{train.parent} does not hold NLB-format NWB files that nlb_tools can "
                        f"read ({type(error).__name__}: {error}); use the files of "
                        f"DANDI:{DANDISETS[name][0]}") from None


def load_nlb(name: str, folder: str | os.PathLike | None = None, bin_size_ms: int = 20,
             phase: str = "val", seed: int = 0, targets: str | os.PathLike | None = None
             ) -> SpikeData:
    """NLB dataset ``name`` as :class:`SpikeData` via nlb_tools' tensors.

    ``spikes`` is ``(train + eval trials, observed + forward bins, held-in + held-out neurons)``,
    held-in neurons first: the training trials with everything nlb_tools gives for them
    (``make_train_input_tensors`` with forward bins), then the evaluation trials with their held-in
    spikes (``make_eval_input_tensors``) and zeros where the model must predict. Splits:
    ``train``/``valid`` partition the training trials, ``test`` is the evaluation trials.
    ``targets``: the published ``eval_data_test.h5`` that scores the test phase (see
    :func:`eval_targets`, which :meth:`NLBSplit.targets` calls when scoring first needs them).
    ``extra["trial_table"]``: nlb_tools' ``trial_info`` columns of each trial ``(trials,)``;
    where NLB scores part of a trial's bins, ``SpikeData.scored_bins`` says which (cut when first
    asked, see :meth:`NLBSplit.scored`).
    """
    if bin_size_ms not in NLB_BIN_SIZES_MS:
        raise DataError(f"NLB bins are 5 or 20 ms, got {bin_size_ms}")
    if phase not in NLB_PHASES:
        raise DataError(f"phase must be 'val' or 'test', got {phase!r}")
    dataset, train_file = open_dataset(name, data_dir(folder), phase)
    resample(dataset, bin_size_ms)
    split = NLBSplit(name, bin_size_ms, phase, 0, dataset, targets, train_file=train_file)
    try:
        with nlb_tools_context():
            train = make_train_input_tensors(dataset, name, split.train_split, save_file=False,
                                             include_forward_pred=True)
            with quiet_test_file_nans() if phase == "test" else nullcontext():
                evaluation = make_eval_input_tensors(dataset, name, phase, save_file=False)
    except Exception as error:
        raise DataError(f"nlb_tools could not cut {name} into trials ({type(error).__name__}: "
                        f"{error}); the NWB files lack fields NLB's {name} has") from None
    heldin = np.concatenate([train["train_spikes_heldin"], train["train_spikes_heldin_forward"]], 1)
    heldout = np.concatenate([train["train_spikes_heldout"],
                              train["train_spikes_heldout_forward"]], 1)
    n_train, n_bins, n_heldin = heldin.shape
    n_eval = len(evaluation["eval_spikes_heldin"])
    spikes = np.zeros((n_train + n_eval, n_bins, n_heldin + heldout.shape[2]), dtype=np.float32)
    spikes[:n_train] = np.concatenate([heldin, heldout], 2)
    observed = evaluation["eval_spikes_heldin"]
    spikes[n_train:, :observed.shape[1], :n_heldin] = np.nan_to_num(observed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_train)
    n_valid = max(1, round(VALID_FRACTION * n_train))
    split.n_train = n_train
    split.trial_ids = np.concatenate([tensor_trial_ids(dataset, name, split.train_split),
                                      tensor_trial_ids(dataset, name, phase)])
    info = dataset.trial_info.set_index("trial_id").loc[split.trial_ids]
    extra = {"nlb": split, "trial_table": {name: info[name].to_numpy() for name in info.columns}}
    split.n_observed = n_bins - train["train_spikes_heldin_forward"].shape[1]
    split.unit_ids = np.concatenate([dataset.data[field].columns.to_numpy()
                                     for field in ("spikes", "heldout_spikes")
                                     if field in dataset.data.columns.get_level_values(0)])
    return SpikeData(
        spikes=spikes,
        heldout=np.arange(spikes.shape[2]) >= n_heldin,
        splits={"train": np.sort(order[n_valid:]), "valid": np.sort(order[:n_valid]),
                "test": np.arange(n_train, n_train + n_eval)},
        n_forward=train["train_spikes_heldin_forward"].shape[1],
        name=name, bin_size=bin_size_ms / 1000,
        extra=extra)


def with_behavior(data: SpikeData, targets_file: Path | None = None) -> SpikeData:
    """NLB ``data`` with the behaviour NLB decodes (``PARAMS`` ``behavior_field``: hand or
    finger velocity, as nlb_tools cuts it, ``lag`` ms after each bin) as ``extra["behavior"]``
    ``(trials, bins, dims)`` float32, ``extra["behavior_name"]`` and ``extra["behavior_unit"]``
    (the TimeSeries' ``unit`` in the train file, where it names one): the training trials' from
    ``make_train_input_tensors``, the evaluation trials' from the targets (``eval_behavior``:
    the val phase, or the test phase with the published targets; read from ``targets_file``, a
    run folder's kept ``eval_targets.h5``, where given and it exists). NaN where unknown (the
    forward bins, test-phase evaluation trials without targets). ``data`` as it is where the
    behaviour is no time series (dmfc_rsg's is one value per trial)."""
    split: NLBSplit = data.extra["nlb"]
    params = PARAMS[split.name]
    if params.get("behavior_source") != "data":
        return data
    if split.targets_file is None and targets_file is not None and targets_file.exists():
        split.targets_file = targets_file
    with nlb_tools_context():
        train = make_train_input_tensors(split.dataset, split.name, split.train_split,
                                         save_file=False, include_behavior=True)["train_behavior"]
    behavior = np.full((data.n_trials, data.n_bins, train.shape[2]), np.nan, dtype=np.float32)
    behavior[:split.n_train, :train.shape[1]] = train
    targets = split.targets()
    if targets is not None and "eval_behavior" in targets[split.key]:
        evaluation = targets[split.key]["eval_behavior"]
        behavior[split.n_train:, :evaluation.shape[1]] = evaluation
    name = (f"{params['behavior_field']} as nlb_tools cuts it, {params.get('lag') or 0} ms after "
            "each bin")
    unit = behavior_unit(split.train_file, params["behavior_field"])
    return dataclasses.replace(data, extra={**data.extra, "behavior": behavior,
                                            "behavior_name": name, **unit})


def behavior_unit(path: Path | None, field: str) -> dict:
    """``{"behavior_unit": unit}`` of the behavioural TimeSeries ``field`` (``hand_vel``) of the
    NLB file ``path`` (its data's NWB ``unit`` attribute), or ``{}`` where the file names none."""
    if path is None:
        return {}
    with h5py.File(path, "r") as file:
        data = file.get(f"processing/behavior/{field}/data")
        unit = None if data is None else data.attrs.get("unit")
    if isinstance(unit, bytes):
        unit = unit.decode()
    return {"behavior_unit": unit} if unit else {}


def scored_bins(split: NLBSplit, n_observed: int) -> np.ndarray | None:
    """Which observed bins of each training trial NLB's evaluation would count
    ``(training trials, observed bins)`` bool, or ``None`` where it counts them all (where
    nlb_tools cuts the evaluation window as the training one: every dataset but DMFC_RSG).

    DMFC_RSG's co-bps counts the bins from set to go only, in a 1.5 s window ending at go plus a
    random jitter. nlb_tools' ``make_eval_target_tensors`` cuts the training trials as it cuts
    the evaluation trials' targets, with the jitter ``make_train_input_tensors`` drew for their
    tensors (the same seed, 0, over the same trials): its NaN are the bins it would not count, so
    a validation score on them counts what the benchmark's counts.
    """
    if "align_range" in PARAMS[split.name]["eval_make_params"]:
        return None
    state = np.random.get_state()  # nlb_tools seeds numpy's global generator
    try:
        with nlb_tools_context():
            cut = make_eval_target_tensors(split.dataset, split.name, split.train_split,
                                           split.train_split, include_psth=False,
                                           save_file=False)
    except Exception as error:  # nlb_tools reports a wrong layout by whatever fails first
        raise DataError(f"nlb_tools could not cut the bins NLB scores of {split.name}'s training "
                        f"trials ({type(error).__name__}: {error}); the NWB files lack fields "
                        f"NLB's {split.name} has") from None
    finally:
        np.random.set_state(state)
    scored = ~np.isnan(cut[split.key]["eval_spikes_heldout"][..., 0])
    if scored.shape != (split.n_train, n_observed):
        raise DataError(f"nlb_tools cut {split.name}'s scored bins {scored.shape}, its training "
                        f"tensors ({split.n_train}, {n_observed}): an nlb_tools other than 0.0.4?")
    return scored


def tensor_trial_ids(dataset: NWBDataset, name: str, trial_split) -> np.ndarray:
    """nlb_tools' ``trial_id`` of each trial of ``trial_split`` (a split name or a list of them)
    in the order of its tensors: the trials table's order, less the trials that lack a time
    their window is cut at (``NWBDataset.make_trial_data`` drops those)."""
    make = PARAMS[name]["make_params"]
    start = make.get("start_field", "start_time")
    fields = [start, make["align_field"] if make.get("align_field") else
              make.get("end_field", "end_time")]
    splits = [trial_split] if isinstance(trial_split, str) else trial_split
    info = dataset.trial_info[dataset.trial_info.split.isin(splits)]
    return info[["trial_id", *fields]].dropna().trial_id.to_numpy()


def eval_targets(split: NLBSplit, targets: str | os.PathLike | None = None) -> dict | None:
    """nlb_tools' evaluation targets ``{key: {...}}``: read from ``targets`` (the published
    ``eval_data_test.h5``) when given, else made from the data in the val phase; ``None`` in the
    test phase without ``targets`` (the held-out answers are not in the NWB files)."""
    if targets is None:
        if split.phase == "test":
            return None
        with nlb_tools_context():
            return make_eval_target_tensors(split.dataset, split.name, split.train_split, "val",
                                            include_psth="psth_params" in PARAMS[split.name],
                                            save_file=False)
    try:
        with h5py.File(targets, "r") as file:
            loaded = h5_to_dict(file)
    except (OSError, FileNotFoundError):
        raise DataError(f"targets file {targets} cannot be read as HDF5; give the path of "
                        "eval_data_test.h5") from None
    if split.key not in loaded:
        raise DataError(f"targets file {targets} has no {split.key!r} group "
                        f"(it has {', '.join(loaded) or 'none'})")
    held = loaded[split.key].get("eval_spikes_heldout")
    n_eval = None if split.trial_ids is None else len(split.trial_ids) - split.n_train
    if held is not None and n_eval is not None and len(held) != n_eval:
        raise DataError(f"targets file {targets} holds {len(held)} evaluation trials of "
                        f"{split.key} but the data have {n_eval}; give the targets of these "
                        "files and this phase")
    return loaded
