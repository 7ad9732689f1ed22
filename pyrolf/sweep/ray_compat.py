"""A shim for Ray Tune 2.60 (tested in ``tests/test_sweep.py``), applied while a sweep runs.

**Each checkpoint registered once.** With population-based training, Ray asks a trial in the
best quantile to save a checkpoint (``PopulationBasedTraining._checkpoint_or_exploit``); a
function trainable's save returns the checkpoint it last reported, which the trial's
``_CheckpointManager`` has already registered, so it is registered twice. With ``num_to_keep``
the manager later deletes it twice: the second deletion fails, and Ray logs "Error handling
checkpoint ... Path not found" with a traceback at every report of that trial from then on.
:func:`checkpoints_registered_once` makes the manager pass over a checkpoint that is already its
latest.
"""

from __future__ import annotations

from contextlib import contextmanager

try:
    from ray.train._internal.checkpoint_manager import _CheckpointManager
except ImportError:  # a Ray whose Tune keeps its checkpoints elsewhere: nothing to mend
    _CheckpointManager = None


@contextmanager
def checkpoints_registered_once():
    """While the block runs, ``_CheckpointManager.register_checkpoint`` ignores a checkpoint
    whose path is that of the latest it registered (module docstring)."""
    if _CheckpointManager is None:
        yield
        return
    register = _CheckpointManager.register_checkpoint

    def once(manager, result):
        latest = manager.latest_checkpoint_result
        if latest is not None and latest.checkpoint.path == result.checkpoint.path:
            return None
        return register(manager, result)

    _CheckpointManager.register_checkpoint = once
    try:
        yield
    finally:
        _CheckpointManager.register_checkpoint = register
