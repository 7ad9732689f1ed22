"""Inference: the SVI training loop (:mod:`~pyrolf.inference.svi`), its steps replayed as CUDA
graphs (:mod:`~pyrolf.inference.capture`) and the traced passes over many trials and draws that
scores and diagnostics read (:mod:`~pyrolf.inference.passes`)."""


class TrainingDiverged(RuntimeError):
    """The ELBO became NaN or infinite."""
