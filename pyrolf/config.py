"""Every setting of a run in one flat, documented dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import typing
from dataclasses import dataclass, fields


class ConfigError(ValueError):
    """A setting a user gave is invalid; the message says which and what is allowed."""


@dataclass
class Config:
    # data
    data: str = "lorenz"            # "lorenz", an NLB dataset name, or a path to a .h5/.npz file
    data_seed: int = 0              # seed of the generated data and of the trial splits
    data_dir: str | None = None     # NLB: folder holding the DANDI downloads; None: $PYROLF_DATA
    bin_size_ms: int = 20           # NLB: 5 or 20 ms bins
    phase: str = "val"              # NLB: "val" (train -> val) or "test" (train + val -> test)
    targets: str | None = None      # NLB test phase: the published eval_data_test.h5
    # latent dynamics (the prior)
    prior: str = "langevin"         # "langevin" (underdamped, paper) or "overdamped" (Brownian;
                                    # needs a potential bounded below: not "oscillators")
    latent_dim: int = 32            # D, size of the position z and of the velocity v
    channels: int = 4               # lattice channels C of the potential (D must be a multiple)
    potential: str = "springs"      # "springs" (bounded below), "oscillators" (paper),
                                    # "anharmonic" (nonlinear), "free"
    step: float = 0.05              # Δ (released code: 0.01; see README "Results")
    damping: float = 0.2            # γ (released code: 0.55)
    noise_scale: float | None = None  # σ; None means sqrt(2γ)
    learn_dynamics: bool = False    # learn Δ, γ, σ
    # guide (encoder)
    guide: str = "langevin"         # "langevin" (prior mean + correction) or "meanfield"
    encoder_hidden: int = 64
    bidirectional: bool = True
    encoder_dropout: float = 0.1
    # decoder
    decoder_width: int = 64
    decoder_heads: int = 2
    decoder_feedforward: int = 256
    decoder_dropout: float = 0.05
    # inference
    sites: str = "vectorised"       # "vectorised" (one trajectory site) or "stepwise" (one per bin)
    epochs: int = 200
    batch_size: int = 64
    lr: float = 3e-3
    lr_final: float = 3e-4          # exponential decay from lr to lr_final over all steps
    weight_decay: float = 2e-5
    clip_norm: float = 10.0
    kl_weight: float = 0.1          # final weight of the latent sites (1 = the exact ELBO)
    kl_warmup: int = 50             # epochs over which the weight ramps from 0 to kl_weight
    cd_rate: float = 0.3            # coordinated dropout: share of held-in inputs hidden and scored
    eval_every: int = 10            # epochs between validation scores and checkpoints
    samples: int = 20               # posterior samples averaged for predicted rates
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        for name, kinds in field_types(type(self)).items():
            setattr(self, name, checked_value(name, getattr(self, name), kinds))
        self.validate()

    def validate(self) -> None:
        positive = ["latent_dim", "channels", "step", "epochs", "batch_size", "lr", "lr_final",
                    "clip_norm", "eval_every", "samples", "encoder_hidden", "decoder_width",
                    "decoder_heads", "decoder_feedforward"]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ["encoder_dropout", "decoder_dropout", "cd_rate"]:
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if not 0 < self.damping < 1:
            raise ConfigError(f"damping must lie in (0, 1), got {self.damping}")
        if self.noise_scale is not None and self.noise_scale <= 0:
            raise ConfigError(f"noise_scale must be positive, got {self.noise_scale}")
        if self.latent_dim % self.channels:
            raise ConfigError(f"latent_dim {self.latent_dim} is not divisible by the "
                              f"{self.channels} lattice channels; pick a multiple")
        if self.decoder_width % self.decoder_heads:
            raise ConfigError(f"decoder_width {self.decoder_width} is not divisible by "
                              f"decoder_heads {self.decoder_heads}")
        if self.kl_weight <= 0:
            raise ConfigError(f"kl_weight must be positive, got {self.kl_weight}")
        if self.kl_warmup < 0 or self.weight_decay < 0:
            raise ConfigError("kl_warmup and weight_decay must not be negative")
        if self.prior == "overdamped" and self.potential == "oscillators":
            raise ConfigError("the overdamped prior diverges in the oscillator potential, which is "
                              "not bounded below; use --potential springs, --potential free (a "
                              "Gaussian random walk) or --potential anharmonic")
        choices = {"sites": ("vectorised", "stepwise"), "device": ("cpu", "cuda"),
                   "phase": ("val", "test"), "bin_size_ms": (5, 20)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, "
                                  f"got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **changes) -> "Config":
        return self.from_dict({**self.to_dict(), **changes})


# What each Python type of a field is called in the words of a JSON file.
TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a finite number",
              str: "a string", type(None): "null"}


@functools.cache
def field_types(cls) -> dict[str, tuple[type, ...]]:
    """``{field name: the types its annotation allows}`` of a dataclass, e.g. ``(str, NoneType)``
    for ``str | None``."""
    hints = typing.get_type_hints(cls)
    return {field.name: typing.get_args(hints[field.name]) or (hints[field.name],)
            for field in fields(cls)}


def checked_value(name: str, value, kinds: tuple[type, ...]):
    """``value`` as the first of ``kinds`` (bool, int, float, str, NoneType) that takes it: a
    whole-valued float (``2.0``) is an int, an int is a float, a bool is neither, NaN and infinity
    are no float. Raises :class:`ConfigError` naming the setting, the value and the types."""
    for kind in kinds:
        if kind is bool or isinstance(value, bool):
            accepted = kind is bool and isinstance(value, bool)
        elif kind is int:
            accepted = isinstance(value, numbers.Integral) or (
                isinstance(value, float) and value.is_integer())
        elif kind is float:
            accepted = isinstance(value, numbers.Real) and math.isfinite(value)
        else:
            accepted = isinstance(value, kind)
        if accepted:
            return value if kind in (str, type(None)) else kind(value)
    expected = " or ".join(TYPE_NAMES[kind] for kind in kinds)
    raise ConfigError(f"setting {name} must be {expected}, got {_shown(value)}")


def _shown(value) -> str:
    """``value`` as a JSON file would show it (``"2"``, ``null``, ``2.5``), else as Python does."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return f"the string {text}" if isinstance(value, str) else text
