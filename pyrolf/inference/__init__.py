"""Inference: the SVI training loop (:mod:`~pyrolf.inference.svi`) and its steps replayed as
CUDA graphs (:mod:`~pyrolf.inference.capture`)."""


class TrainingDiverged(RuntimeError):
    """The ELBO became NaN or infinite."""
