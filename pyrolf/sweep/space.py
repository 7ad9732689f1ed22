"""The hyperparameters a sweep searches: a documented table of ranges, and the checks that refuse
a bad one before any trial starts.

Every entry names a :class:`~pyrolf.config.Config` field. A user replaces an entry's range with a
JSON object (``pyrolf sweep --space FILE``): ``{"lr": [1e-4, 1e-2]}`` gives new bounds to a range,
``{"latent_dim": [16, 32]}`` new options to a choice, and a single number (``{"damping": 0.3}``)
fixes the field for every trial.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pyrolf.config import Config, ConfigError

RANGES = ("loguniform", "uniform")


@dataclass(frozen=True)
class Dimension:
    """How the trials of a sweep draw one :class:`~pyrolf.config.Config` field.

    Attributes:
        kind: ``"loguniform"`` or ``"uniform"`` (``values`` is ``(low, high)``), or ``"choice"``
            (``values`` are the options, drawn with equal probability).
        values: the bounds or the options.
        mutable: population-based training may perturb it while trials train: it lives in the
            config, not in the weights (a trial that takes another's weights rebuilds its
            networks and trainer from its own config). The other entries shape the networks or
            are stored in the weights (Δ, γ), so a trial that takes another's weights takes those
            values with them.
        meaning: what the field is.
    """

    kind: str
    values: tuple
    mutable: bool
    meaning: str

    def domain(self):
        """The Ray Tune sampling domain (``tune.loguniform``, ``tune.uniform``, ``tune.choice``)."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        return getattr(tune, self.kind)(*self.values)

    def clip(self, value):
        """``value`` moved into the range (population-based training perturbs by factors)."""
        if self.kind == "choice":
            return value
        low, high = self.values
        return min(max(value, low), high)


SEARCH_SPACE: dict[str, Dimension] = {
    "lr": Dimension("loguniform", (1e-3, 1e-2), True,
                    "initial learning rate of ClippedAdam (decays to lr_final)"),
    # (down to 0.01: what small sessions need to leave the neurons' mean rates; see README)
    "kl_weight": Dimension("loguniform", (0.01, 1.0), True,
                           "final weight of the latent sites after the warm-up (1 = exact ELBO)"),
    "damping": Dimension("uniform", (0.05, 0.6), False,
                         "γ: share of the velocity lost per step (the start, if learned)"),
    "step": Dimension("loguniform", (0.01, 0.1), False, "Δ: integration step (the start, if learned)"),
    "latent_dim": Dimension("choice", (16, 32, 48, 64), False,
                            "D: size of position and velocity (a multiple of the channels)"),
    "encoder_dropout": Dimension("uniform", (0.0, 0.3), True, "dropout of the GRU encoder"),
    "decoder_dropout": Dimension("uniform", (0.0, 0.2), True, "dropout of the Transformer decoder"),
    "cd_rate": Dimension("uniform", (0.1, 0.5), True,
                         "coordinated dropout: share of held-in inputs hidden and scored"),
    "decoder_width": Dimension("choice", (32, 64, 128), False,
                               "width of the Transformer decoder (a multiple of decoder_heads)"),
}


def search_space(overrides: dict | None, base: Config) -> dict[str, Dimension]:
    """:data:`SEARCH_SPACE` with a user's ``overrides`` applied, every bound and option checked
    against ``base`` (the settings the trials share): each must give a valid
    :class:`~pyrolf.config.Config`, else :class:`~pyrolf.config.ConfigError` says which entry
    and why."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ConfigError("the search space must be a JSON object of entries, e.g. "
                          '{"lr": [0.001, 0.01], "latent_dim": [16, 32]}')
    unknown = sorted(set(overrides) - set(SEARCH_SPACE))
    if unknown:
        raise ConfigError(f"unknown search-space entr{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(unknown)}; known: {', '.join(SEARCH_SPACE)}")
    space = {}
    for name, dimension in SEARCH_SPACE.items():
        if name in overrides:
            dimension = _override(name, dimension, overrides[name])
        _check(name, dimension, base)
        space[name] = dimension
    return space


def _override(name: str, dimension: Dimension, value) -> Dimension:
    """``dimension`` with the bounds, options or single value a user gave for it."""
    if not isinstance(value, list):
        return replace(dimension, kind="choice", values=(value,))
    if dimension.kind in RANGES and len(value) != 2:
        raise ConfigError(f"search space {name}: give its range as [low, high] or one number "
                          f"to fix it, got {value}")
    if not value:
        raise ConfigError(f"search space {name}: give at least one option")
    return replace(dimension, values=tuple(value))


def _check(name: str, dimension: Dimension, base: Config) -> None:
    """Refuse bounds or options that are not numbers of the field's type, that make an invalid
    config, or that do not form a range."""
    integer = isinstance(getattr(base, name), int)
    for value in dimension.values:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            kind = "whole numbers" if integer else "numbers"
            raise ConfigError(f"search space {name}: values must be {kind}, got {value!r}")
        try:
            base.replace(**{name: value})
        except ConfigError as error:
            raise ConfigError(f"search space {name} = {value}: {error}") from None
    if dimension.kind in RANGES:
        low, high = dimension.values
        if low >= high:
            raise ConfigError(f"search space {name}: the range [{low}, {high}] is empty; give "
                              "[low, high] with low < high, or one number to fix it")


def mutable(space: dict[str, Dimension]) -> dict[str, Dimension]:
    """The searched entries population-based training may perturb while trials train."""
    return {name: dimension for name, dimension in space.items()
            if dimension.mutable and len(dimension.values) > 1}
