"""Fit, resume and evaluate, infer and diagnose, with or without a run folder: what the CLI and
the Python API call. One module per step: :mod:`~pyrolf.pipeline.training` (fit, resume,
evaluate), :mod:`~pyrolf.pipeline.inferred` (infer), :mod:`~pyrolf.pipeline.diagnosis`
(diagnose), and :mod:`~pyrolf.pipeline.records`, what a run folder records and how a run is
loaded from it."""

from pyrolf.pipeline.diagnosis import diagnose_run
from pyrolf.pipeline.inferred import NETCDF_SUFFIXES, infer, infer_run
from pyrolf.pipeline.records import (DYNAMICS, INFERRED, SPECTRUM, WEIGHTS_RECORD, check_device,
                                     diagnosed_folder, fitted_record, load_run, modules,
                                     run_device, weights_of, weights_record)
from pyrolf.pipeline.training import (FitResult, evaluate_run, fit, init_source, resume,
                                      starting_flow, training_record)

__all__ = ["DYNAMICS", "FitResult", "INFERRED", "NETCDF_SUFFIXES", "SPECTRUM", "WEIGHTS_RECORD",
           "check_device", "diagnose_run", "diagnosed_folder", "evaluate_run", "fit",
           "fitted_record", "infer", "infer_run", "init_source", "load_run", "modules", "resume",
           "run_device", "starting_flow", "training_record", "weights_of", "weights_record"]
