"""Hyperparameter sweeps of LangevinFlow with Ray Tune (the optional extra ``pyrolf[sweep]``).

:mod:`pyrolf.sweep.space` holds the documented search space and its checks and needs no Ray;
:mod:`pyrolf.sweep.tune` runs a sweep (``run_sweep``, ``resume_sweep``) and imports Ray.
"""

from pyrolf.runs import RunError
from pyrolf.sweep.space import SEARCH_SPACE, Dimension, search_space


class SweepError(RunError):
    """A sweep cannot start, continue or finish: Ray is missing or unreachable, the folder holds
    no sweep or already holds one, or no trial reported a validation score."""


__all__ = ["SEARCH_SPACE", "Dimension", "SweepError", "search_space"]
