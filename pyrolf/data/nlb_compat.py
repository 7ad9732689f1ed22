"""The edge between nlb_tools 0.0.4 and today's pandas: everything pyrolf calls in nlb_tools runs
inside :func:`nlb_tools_context`.

nlb_tools 0.0.4 pins ``pandas<=1.3.4`` (no wheel for Python >= 3.11), but its code runs on pandas
2.x as long as copy-on-write is off: with it on (pandas 3 always, pandas 2.2+ by option),
``NWBDataset.resample`` writes into a read-only ``to_numpy()`` view and fails. pyproject.toml
overrides the pin to ``pandas>=2.2,<3``; this module

- turns copy-on-write off for the duration of the nlb_tools calls (a user's session may have it on),
- smooths on threads when memory allows: ``make_eval_target_tensors`` smooths the whole 1 ms
  session for its PSTHs with ``NWBDataset.smooth_spk``, which by default sends every neuron's
  column to nlb_tools' ``_poolmap``, a pool of one process per core; that pickles each column out
  and back and holds extra copies of the session (gigabytes for MC_Maze, where it ran a 24 GB
  machine out of memory). Here ``_poolmap`` maps over threads in this process instead (the
  convolution releases the GIL, so every core smooths within the one copy of the session; the
  same numbers), and only where the free memory holds the float64 copies of the smoothed
  session that path peaks at (:data:`THREAD_COPIES`; 32 GiB for a generated MC_Maze session of
  5.2 million ms × 184 columns); elsewhere nlb_tools smooths one column after another
  (``parallelized=False``, smooth_spk's own switch), which needs about one copy less; where the
  memory holds not even that (:data:`LEAST_COPIES`) it stops in one line, not killed for memory
  minutes later,
- refuses pandas 3 with one line that says what to install,
- checks that resampling took effect (if it fails half-way the data stay at 1 ms and
  ``evaluate`` silently returns nothing),
- keeps quiet the warning nlb_tools logs for every test-phase evaluation set (``NaNs found in
  100.00% of `trial_data```): the test file has no held-out spikes, by NLB's design, and their
  columns are all NaN there (:func:`quiet_test_file_nans`),
- saves evaluation targets whose conditions all have the same number of trials: nlb_tools then
  holds a condition's trial indices as a 2-D object array, which its ``save_to_h5`` cannot write
  (it writes the 1-D object array of index arrays it makes for unequal conditions).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import wraps

import numpy as np
import pandas as pd
from nlb_tools import nwb_interface
from nlb_tools.make_tensors import save_to_h5
from nlb_tools.nwb_interface import NWBDataset

from pyrolf.data.spikes import DataError
from pyrolf.memory import available_memory


def check_pandas(version: str = pd.__version__) -> None:
    """Raise :class:`DataError` when ``version`` is a pandas nlb_tools 0.0.4 cannot run on."""
    major = int(version.split(".")[0])
    if major >= 3:
        raise DataError(f"nlb_tools 0.0.4 does not run on pandas {version} (copy-on-write); "
                        "install pandas 2: pip install 'pandas>=2.2,<3'")


@contextmanager
def nlb_tools_context():
    """Run nlb_tools with copy-on-write off (pandas 2.x) and its smoothing on threads where the
    memory allows, else one column after another."""
    check_pandas()
    smooth_spk, poolmap = NWBDataset.smooth_spk, nwb_interface._poolmap
    NWBDataset.smooth_spk, nwb_interface._poolmap = _smooth_spk(smooth_spk), thread_map
    try:
        with pd.option_context("mode.copy_on_write", False):
            yield
    finally:
        NWBDataset.smooth_spk, nwb_interface._poolmap = smooth_spk, poolmap


class _DropTrialDataNaNs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("NaNs found in ")


@contextmanager
def quiet_test_file_nans():
    """nlb_tools' ``NaNs found in ... of `trial_data``` warnings dropped meanwhile: cutting the
    test phase's evaluation trials, whose held-out spikes the test file does not hold."""
    logger, dropped = logging.getLogger(nwb_interface.__name__), _DropTrialDataNaNs()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)


#: copies of the session (1 ms rows x columns, float64) that smoothing it peaks at on threads,
#: with room to spare: measured 4.2 (``benchmarks/nlb_scoring.py``'s steps on a generated
#: 500-trial MC_Maze folder, 1.23 GiB a copy, 0.38 GiB held before: peak 5.57 GiB on threads,
#: 4.35 GiB one column after another, 3.2 copies); at 3, this 23 GiB machine took the threads for
#: an MC_Maze-sized session and was killed
THREAD_COPIES = 4.5
#: copies below which not even one column after another fits, refused: under the least seen,
#: 2.65 (an MC_Maze-sized folder's 18.9 GiB peak over 7.13 GiB copies, its loaded data counted
#: in), as a refusal must be sure; between this and 3.2 a smoothing may still run out
LEAST_COPIES = 2.2


def _smooth_spk(smooth_spk):
    @wraps(smooth_spk)
    def smooth(dataset, *args, **kwargs):
        rows, columns = dataset.data.shape  # at least the columns smoothed
        copy = rows * columns * np.dtype(kwargs.get("dtype", "float64")).itemsize
        available = available_memory()
        if available is not None and available < LEAST_COPIES * copy:
            needed = LEAST_COPIES * copy / 2**30
            raise DataError(f"nlb_tools' PSTH targets smooth the whole session at 1 ms ({rows} "
                            f"rows x {columns} columns): more than {needed:.3g} GiB, and this "
                            f"process can take {available / 2**30:.3g} GiB; free memory, or "
                            "score where more is free")
        kwargs.setdefault("parallelized", (available or 0) > THREAD_COPIES * copy)
        return smooth_spk(dataset, *args, **kwargs)
    return smooth


def thread_map(f, items, nprocs: int | None = None, chunksize=None) -> list:
    """``[f(x) for x in items]`` on a pool of ``nprocs`` threads (default: one per core), in the
    signature of nlb_tools' process-pool ``_poolmap`` it stands in for (``chunksize`` unused)."""
    with ThreadPoolExecutor(nprocs or os.cpu_count()) as pool:
        return list(pool.map(f, items))


def resample(dataset, bin_ms: int) -> None:
    """``dataset.resample(bin_ms)`` under :func:`nlb_tools_context`, checked to have happened."""
    with nlb_tools_context():
        dataset.resample(bin_ms)
    if dataset.bin_width != bin_ms:
        raise DataError(f"nlb_tools could not resample the data to {bin_ms} ms (they stay at "
                        f"{dataset.bin_width} ms); check the pandas version (2.x is needed)")


def save_targets(targets: dict, path) -> None:
    """``save_to_h5`` of nlb_tools' nested target dict at full precision (64-bit numbers), with each
    2-D object array of trial indices written as the 1-D array of index arrays it stands for;
    ``path`` a file's path or a file object (as h5py takes)."""
    save_to_h5(_rows_of_objects(targets), path, dlen=64)


def _rows_of_objects(tree: dict) -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            value = _rows_of_objects(value)
        elif value.dtype == object and value.ndim > 1:
            rows = np.empty(len(value), dtype=object)
            rows[:] = [np.asarray(list(row), dtype=np.int64) for row in value]
            value = rows
        out[key] = value
    return out
