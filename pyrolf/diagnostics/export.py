"""Every trial's posterior in one xarray Dataset: what ``pyrolf infer`` writes to ``inferred.nc``:
the posterior summaries (:mod:`pyrolf.diagnostics.summary`) on the coordinates of
:mod:`pyrolf.diagnostics.coords`. A continuous recording's windows are merged back into one
series over the whole recording (:func:`merged_dataset`).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import xarray as xr

from pyrolf.data.chop import merge
from pyrolf.data.spikes import SpikeData
from pyrolf.diagnostics.arviz_adapter import NETCDF_ENGINE
from pyrolf.diagnostics.coords import (forward_coord, neuron_coords, seconds, time_coord,
                                       trial_coords)
from pyrolf.diagnostics.ppc import INTERVAL_PROB
from pyrolf.diagnostics.summary import VARIABLES, posterior_summary
from pyrolf.evaluation.report import trial_inputs
from pyrolf.memory import check_fits
from pyrolf.runs import RunFolder


DESCRIPTIONS = {
    "z": ("latent position, posterior mean", "latent"),
    "v": ("latent velocity, posterior mean", "latent"),
    "inputs": ("inferred input, posterior mean: v_t - mean(z_{t-1}, v_{t-1}), the velocity beyond "
               "the prior's drift from the bin before (0 at t = 0)", "latent"),
    "rates": ("firing rate in spikes per bin, posterior mean", "neuron"),
}
#: each variable's units where it has any (the latents' scale is the model's own)
UNITS = {"rates": "spikes/bin"}


def inferred_dataset(summary: dict[str, np.ndarray], data: SpikeData, samples: int,
                     config: dict) -> xr.Dataset:
    """The Dataset of ``inferred.nc`` from a :func:`posterior_summary` of every trial of
    ``data`` (laid out on the run's neurons, as :func:`new_trials` makes it): variables
    ``z``, ``v``, ``inputs`` ``(trial, time, latent)``, ``rates`` ``(trial, time, neuron)`` (units
    ``spikes/bin``) and each one's ``_lower`` and ``_upper``; coordinates :func:`trial_coords`,
    ``time`` (:func:`time_coord`), ``forward`` (per bin: a forward bin, never shown to the
    encoder), ``neuron`` (:attr:`SpikeData.neuron_ids`), ``heldout`` and ``latent`` (0, 1, ...);
    attributes the run's ``config`` (JSON), ``pyrolf_version``, ``bin_size_s`` (NaN where
    unknown), ``samples``, ``interval`` and ``source``. Where the data have behaviour
    (``extra["behavior"]``, see :func:`pyrolf.data.recordings.bin_behavior`) it comes along as
    ``behavior`` ``(trial, time, behavior_dim)``, observed, not inferred. Where some counts
    were not recorded (NaN, or a unit filled in), ``recorded`` ``(trial, time, neuron)`` says
    which were (:func:`recorded_counts`). The windows of a continuous recording (``"chop"`` in
    ``data.extra``) come merged into one series: :func:`merged_dataset`; their ``summary`` is
    merged already (:func:`posterior_summary` with ``chop``)."""
    coords = {
        **trial_coords(data),
        "time": time_coord(data),
        **neuron_coords(data),
        "latent": ("latent", np.arange(summary["z"].shape[-1]),
                   {"long_name": "latent dimension (z and v have one each)"}),
        "forward": forward_coord(data),
    }
    if "in_data" in data.extra:  # new trials: which units they held
        coords["in_data"] = ("neuron", np.asarray(data.extra["in_data"], dtype=bool), {
            "long_name": "the unit's spikes were in the data; where not, its rates are the "
                         "run's predictions only (and, held in, the encoder read them filled)"})
    chopped = "chop" in data.extra
    summaries, variables = {}, {}
    for name in VARIABLES:
        text, last = DESCRIPTIONS[name]
        dims = ("time", last) if chopped else ("trial", "time", last)
        units = {"units": UNITS[name]} if name in UNITS else {}
        summaries[name] = (dims, summary[name], {"long_name": text, **units})
        for side in ("lower", "upper"):
            summaries[f"{name}_{side}"] = (dims, summary[f"{name}_{side}"], {
                "long_name": f"{side} end of the central {INTERVAL_PROB:.0%} posterior interval "
                             f"of {name}", **units})
    recorded = recorded_counts(data)
    if recorded is not None:
        variables["recorded"] = (("trial", "time", "neuron"), recorded, {
            "long_name": "the unit was recorded in the bin (its obs_intervals; in_data): where "
                         "not, its rates there are the run's predictions only"})
    if "behavior" in data.extra:
        unit = {"units": data.extra["behavior_unit"]} if "behavior_unit" in data.extra else {}
        variables["behavior"] = (("trial", "time", "behavior_dim"), data.extra["behavior"], {
            "long_name": f"observed behaviour: {data.extra['behavior_name']}, binned as the "
                         "spikes are", **unit})
    attrs = {**run_attrs(data, config), "samples": int(samples),
             "interval": f"central {INTERVAL_PROB:.0%} posterior interval"}
    if chopped:
        return merged_dataset(xr.Dataset(variables, coords=coords, attrs=attrs), data, summaries)
    return xr.Dataset({**summaries, **variables}, coords=coords, attrs=attrs)


def recorded_counts(data: SpikeData) -> np.ndarray | None:
    """``(trials, time, neurons)`` bool: which counts of ``data`` were recorded (not NaN, or not
    NaN before :func:`~pyrolf.diagnostics.missing.fill_missing_counts` filled them:
    ``extra["unrecorded"]``, of a unit ``extra["in_data"]`` does not flag as missing); ``None``
    where all were."""
    recorded = ~data.extra.get("unrecorded", np.isnan(data.spikes))
    if "in_data" in data.extra:
        recorded &= np.asarray(data.extra["in_data"], dtype=bool)
    return None if recorded.all() else recorded


def run_attrs(data: SpikeData, config: dict) -> dict:
    """What a run's output files (``inferred.nc``, ``posterior.nc``) say they are of: the run's
    ``config`` (JSON), ``pyrolf_version``, ``bin_size_s`` (NaN where unknown) and ``source``
    (``data``'s name, which callers replace by its file)."""
    bin_size = data.bin_size
    return {"config": json.dumps(config), "pyrolf_version": version("pyrolf"),
            "bin_size_s": float("nan") if bin_size is None else float(bin_size),
            "source": data.name}


def window_starts(data: SpikeData) -> np.ndarray:
    """Each window's start ``(windows,)`` in seconds in the file's time base, of a continuous
    recording's windows (``"chop"`` in ``data.extra``)."""
    plan = data.extra["chop"]
    return seconds(plan["start_time"] + np.asarray(plan["starts"]) * plan["bin_size"])


def merged_dataset(windows: xr.Dataset, data: SpikeData, merged: dict | None = None
                   ) -> xr.Dataset:
    """The windows of a continuous recording (``windows``, laid out by ``trial`` as
    :func:`inferred_dataset` lays out trials, one per window of ``data``) merged into one series
    over the whole recording by :func:`pyrolf.data.chop.merge`: each bin from the window whose
    centre is nearest (a tie to the later window; the middle of each overlap is the cut), with
    the variables ``merged`` already (``{name: (dims, values, attrs)}``, dims led by ``time``:
    the posterior summaries, merged as they were reduced) first. Every variable, ``_lower`` and
    ``_upper`` included, goes to ``(time, latent)`` or ``(time, neuron)``; a merged interval is
    the per-bin interval of the window the bin came from. ``time`` is the bin start in seconds
    in the file's time base (NWB: from the session start), ``start_time + bin * bin_size``;
    per-bin coordinates ``window`` (the window the bin came from), ``split`` (its split) and
    ``forward`` (a forward bin of its window: windows with forward bins give a bin from those
    only where no window observes it); attributes ``window_start_s`` (each window's start),
    ``window_bins``, ``overlap_rule``."""
    plan = data.extra["chop"]
    starts, n_time = np.asarray(plan["starts"]), int(plan["n_time"])
    n_windows, observed = len(starts), data.n_observed
    window_of_bin = merge(np.repeat(np.arange(n_windows)[:, None], data.n_bins, 1), starts,
                          n_time, observed)
    bin_in_window = merge(np.repeat(np.arange(data.n_bins)[None], n_windows, 0), starts, n_time,
                          observed)
    variables = {**(merged or {}), **{
        name: (("time", *array.dims[2:]), merge(array.values, starts, n_time, observed),
               array.attrs) for name, array in windows.data_vars.items()}}
    coords = {
        "time": ("time", seconds(plan["start_time"] + np.arange(n_time) * plan["bin_size"]),
                 {"units": "s", "long_name": "bin start in seconds in the recording file's time "
                                             "base (NWB: from the session start)"}),
        "window": ("time", window_of_bin, {"long_name": "the window (chop) this bin was taken "
                                                        "from"}),
        "split": ("time", windows["split"].values[window_of_bin],
                  {"long_name": "split of the window this bin was taken from"}),
        "forward": ("time", bin_in_window >= observed,
                    {"long_name": "a forward bin of its window, predicted by the prior alone: "
                                  "no window observes it"}),
        "latent": windows["latent"],
        **{name: coord for name, coord in windows.coords.items() if coord.dims == ("neuron",)},
    }
    attrs = {**windows.attrs, "window_start_s": window_starts(data),
             "window_bins": int(data.n_bins),
             "overlap_rule": "each bin from the window whose centre is nearest (a tie to the "
                             "later window): the middle of each overlap is the cut; intervals "
                             "are the per-bin intervals of that window"}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def write_inferred(dataset: xr.Dataset, path: Path) -> None:
    """Write ``dataset`` to the netCDF file ``path`` (HDF5 inside, so ``xarray.open_dataset``
    and ``h5py`` both read it; variables byte-shuffled, then zlib-compressed: smaller and faster
    to write than zlib alone) through a temporary file beside it, so an interrupted or failed
    write leaves no file. The file is made in memory (its compressed bytes beside the dataset),
    then written by plain file I/O (:meth:`RunFolder.write_image`: HDF5 writing to a full disk
    crashed the process at exit)."""
    path = Path(path)
    encoding = {name: {"zlib": True, "shuffle": True} for name in dataset.data_vars}
    RunFolder(path.parent).write_image(path.name, lambda image: dataset.to_netcdf(
        image, engine=NETCDF_ENGINE, encoding=encoding))


def summary_bytes(n_trials: int, n_bins: int, latent_dim: int, n_neurons: int,
                  merged_bins: int | None = None) -> int:
    """Bytes ``infer`` holds at its peak for the posterior summaries of ``n_trials`` trials of
    ``n_bins`` bins (:func:`posterior_summary`: the mean and interval bounds of ``z``, ``v`` and
    ``inputs``, ``latent_dim`` each, and of the rates, ``n_neurons``, float32) and the file
    written from them, whose image is made in memory (:func:`write_inferred`; compressed, at
    most as large); of a continuous recording, the merged series of ``merged_bins`` bins and its
    file (the windows' summaries are merged as they come, none kept)."""
    per_bin = 3 * (3 * latent_dim + n_neurons) * 4
    return 2 * (n_trials * n_bins if merged_bins is None else merged_bins) * per_bin


def check_summary_memory(flow, data: SpikeData) -> None:
    """Raise :class:`~pyrolf.config.ConfigError` where inferring every trial of ``data`` would
    not fit in the memory available (:func:`summary_bytes`, ``flow.prior.latent_dim``
    latents; :func:`~pyrolf.memory.check_fits`), before any draw: not killed for memory minutes
    later. Nothing is checked where either is unknown."""
    latent_dim = getattr(getattr(flow, "prior", None), "latent_dim", None)
    if latent_dim is None:
        return
    chop = data.extra.get("chop")
    check_fits(summary_bytes(data.n_trials, data.n_bins, latent_dim, data.n_neurons,
                             None if chop is None else int(chop["n_time"])),
               f"the posterior summaries of {data.n_trials} "
               f"{'trials' if chop is None else 'windows'} of {data.n_bins} bins, with the file "
               "written from them,",
               "infer fewer at a time (--data FILE --trials-where), or where more is free")


def infer_trials(flow, data: SpikeData, samples: int, config: dict, device: str = "cpu",
                 draws_per_pass: int | None = None, progress: bool = False) -> xr.Dataset:
    """:func:`inferred_dataset` of every trial of ``data`` (laid out on the run's neurons) from
    ``samples`` posterior draws each, on ``device`` (``flow`` already there); ``progress``: a
    bar of the trial-draws done (:func:`check_summary_memory` says first whether they fit)."""
    chop = data.extra.get("chop")
    summary = posterior_summary(flow, trial_inputs(data, np.arange(data.n_trials), device),
                                data.n_bins, samples, draws_per_pass,
                                "infer" if progress else None,
                                None if chop is None else {**chop, "observed": data.n_observed})
    return inferred_dataset(summary, data, samples, config)
