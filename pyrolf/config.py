"""Every setting of a run in one flat, documented dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
import typing
from dataclasses import MISSING, dataclass, field, fields

from pyrolf.data import data_file, named_data, where
from pyrolf.data.dandi import DANDISETS
from pyrolf.data.recordings import CHOP_OPTIONS, TRIAL_OPTIONS, UNIT_OPTIONS
from pyrolf.names import (BOUNDED_BELOW, DEVICES, GUIDE_NAMES, INTEGRATORS, NLB_BIN_SIZES_MS,
                          NLB_PHASES, POTENTIAL_NAMES, PRIORS, QUADRATIC, SITES)

#: NLB's default bin width (ms; :data:`~pyrolf.names.NLB_BIN_SIZES_MS` its choices); own
#: recordings take any whole number of ms
NLB_BIN_MS = 20
OWN_DATA_BIN_MS = 10


class ConfigError(ValueError):
    """A setting a user gave is invalid; the message says which and what is allowed."""


@dataclass
class Config:
    # data
    data: str = "lorenz"            # "lorenz", an NLB dataset name, or the path of a .h5/.npz
                                    # spike file or of a recording (.nwb, spike-times .npz)
    data_seed: int = 0              # seed of the generated data and of the trial splits
    data_dir: str | None = None     # NLB: folder holding the DANDI downloads; None: $PYROLF_DATA
    bin_size_ms: int | None = None  # bin width (ms); None: the data's default (bin_ms)
    phase: str = "val"              # NLB: "val" (train -> val) or "test" (train + val -> test)
    targets: str | None = None      # NLB test phase: the published eval_data_test.h5
    # own recordings: an NWB file or a spike-times .npz (see pyrolf/data/recordings.py)
    align: str = "start_time"       # trials-table column (s) the window is aligned to
    window: str | None = None       # "START,STOP" s around the alignment; None: 0 to shortest trial
    condition: str | None = None    # trials-table column whose values are the conditions
    trials_where: list[str] = field(default_factory=list)  # only the trials that meet every
                                    # condition "COLUMN=VALUE" (or !=, <, <=, >, >=)
    units_where: list[str] = field(default_factory=list)  # only the units that meet every
                                    # condition on the Units table (NWB), e.g. "quality=good"
    behavior: str | None = None     # a behavioural series binned beside the spikes (NWB: a
                                    # TimeSeries; spike-times .npz: arrays NAME, NAME_times)
    behavior_lag_ms: int = 0        # behavior_r2 decodes the behaviour this long after the
                                    # rates' bin (NLB: 100 for MC_Maze); whole bins
    heldout_fraction: float = 0.2   # share of the units held out (seeded by data_seed); also for
                                    # spike files without a `heldout` array
    continuous: bool = False        # chop the whole recording into windows (no trials)
    chop_s: float = 1.0             # continuous: length of a window (s)
    overlap_s: float = 0.2          # continuous: overlap of neighbouring windows (s)
    sessions: list[str] = field(default_factory=list)  # more recordings or spike files fitted
                                    # with data, each with its own neurons, one shared dynamics
                                    # (pyrolf/data/sessions.py)
    session_names: list[str] = field(default_factory=list)  # the name of data and of each of
                                    # sessions; empty: their files' stems (a run folder keeps them)
    forward_bins: int = 0           # trailing bins of each trial the encoder never sees, scored
                                    # by fp_bps (not NLB data: they have their own forward window)
    init_from: str | None = None    # a run folder whose weights start this fit, all but each
                                    # neuron's own read-in and read-out (models/transfer.py)
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
    learn_dynamics: bool = True     # learn Δ, γ, σ by SVI, starting from the values above
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
    integrator: str = "auto"        # how a trajectory is drawn: "loop" (bin by bin), "scan" (a
                                    # parallel scan over bins; quadratic potentials) or "auto"
                                    # (the scan on a GPU for one shared step, else the loop)
    cuda_graphs: bool = False       # on a GPU, replay each SVI step (loss, gradients, update)
                                    # as a CUDA graph (pyrolf/inference/capture.py); off until
                                    # timed on a GPU
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
    threads: int | None = None      # CPU threads of a fit; None: the cores other processes leave
                                    # free, checked every epoch (see pyrolf/threads.py)

    def __post_init__(self):
        for name in WHERE:  # one condition, as config.json files before units_where hold it
            value = getattr(self, name)
            if value is None or isinstance(value, str):
                setattr(self, name, [] if value is None else [value])
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
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
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
        self._validate_sessions()
        if self.forward_bins < 0:
            raise ConfigError(f"forward_bins must not be negative, got {self.forward_bins}")
        if self.forward_bins and self.data in DANDISETS:
            raise ConfigError(f"{self.data} has NLB's own forward window (200 ms, scored by "
                              "fp-bps); leave out forward_bins")
        if self.kl_warmup < 0 or self.weight_decay < 0:
            raise ConfigError("kl_warmup and weight_decay must not be negative")
        choices = {"prior": PRIORS, "potential": POTENTIAL_NAMES, "guide": GUIDE_NAMES,
                   "sites": SITES, "device": DEVICES, "phase": NLB_PHASES,
                   "integrator": INTEGRATORS}
        if self.data == "lorenz" and self.bin_size_ms is not None:
            raise ConfigError("the Lorenz data have bins of their own; leave out bin_size_ms "
                              "(--bin)")
        if not self.own_data() and self.bin_size_ms is not None:
            choices["bin_size_ms"] = NLB_BIN_SIZES_MS
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, "
                                  f"got {getattr(self, name)!r}")
        if self.prior == "overdamped" and not BOUNDED_BELOW[self.potential]:
            raise ConfigError("the overdamped prior diverges in the oscillator potential, which is "
                              "not bounded below; use --potential springs, --potential free (a "
                              "Gaussian random walk) or --potential anharmonic")
        if self.integrator == "scan" and not QUADRATIC[self.potential]:
            raise ConfigError(f"the scan integrator needs a quadratic potential and "
                              f"{self.potential} is not; use --config with integrator \"loop\" "
                              "or \"auto\"")
        self._validate_own_data()

    def own_data(self) -> bool:
        """Whether ``data`` names a file (a recording or a spike file), not the Lorenz data or
        an NLB dataset, whose bins are fixed (:func:`named_data`)."""
        return not named_data(self.data)

    def bin_ms(self) -> int:
        """The bin width in ms: ``bin_size_ms``, else 10 for own recordings and 20 for NLB (the
        Lorenz data and binned spike files have their own bins)."""
        if self.bin_size_ms is not None:
            return self.bin_size_ms
        return OWN_DATA_BIN_MS if self.own_data() else NLB_BIN_MS

    def window_seconds(self) -> tuple[float, float] | None:
        """``window`` as ``(start, stop)`` seconds, or ``None``."""
        if self.window is None:
            return None
        try:
            start, stop = (float(part) for part in self.window.split(","))
        except ValueError:
            start = stop = math.nan
        if not (math.isfinite(start) and math.isfinite(stop) and start < stop):
            raise ConfigError(f"window must be START,STOP in seconds around the alignment with "
                              f"START < STOP (e.g. -0.2,0.8), got {self.window!r}")
        return start, stop

    def _validate_own_data(self) -> None:
        if self.bin_size_ms is not None and self.bin_size_ms < 1:
            raise ConfigError(f"bin_size_ms must be a positive whole number of ms, got "
                              f"{self.bin_size_ms}")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError(f"heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")
        if self.chop_s <= 0 or not 0 <= self.overlap_s < self.chop_s:
            raise ConfigError(f"need chop_s > 0 and 0 <= overlap_s < chop_s, got chop_s "
                              f"{self.chop_s} and overlap_s {self.overlap_s}")
        self.window_seconds()
        for name in WHERE:
            for condition in getattr(self, name):
                try:
                    where.parse(condition)
                except ValueError as error:
                    raise ConfigError(f"{name}: {error}") from None
        if self.continuous and self.changed(TRIAL_OPTIONS):
            raise ConfigError(f"continuous recordings have no trials: leave out "
                              f"{', '.join(self.changed(TRIAL_OPTIONS))}")
        if self.behavior_lag_ms and self.behavior is None:
            raise ConfigError("behavior_lag_ms shifts the behaviour that behavior_r2 decodes; "
                              "give the behaviour too (--behavior NAME)")
        if self.behavior_lag_ms % self.bin_ms():
            raise ConfigError(f"behavior_lag_ms must be a whole number of bins of "
                              f"{self.bin_ms()} ms, got {self.behavior_lag_ms}")
        changed = self.changed((*TRIAL_OPTIONS, *UNIT_OPTIONS, *CHOP_OPTIONS, "heldout_fraction",
                                "behavior"))
        if not self.own_data() and changed:
            raise ConfigError(f"only own recordings (an .nwb or spike-times .npz file) take "
                              f"{', '.join(changed)}, not {self.data!r}")
        changed = self.changed(NLB_OPTIONS)
        if changed and (self.data == "lorenz" or data_file(self.data) is not None):
            # (another name is an unknown dataset, which loading says)
            raise ConfigError(f"only NLB datasets take {', '.join(changed)}, not {self.data!r}")

    def _validate_sessions(self) -> None:
        if not self.sessions:
            if self.session_names:
                raise ConfigError("session_names names the sessions of a fit of several; give "
                                  "sessions too, or leave it out")
            return
        every = [self.data, *self.sessions]
        for name in every:
            if named_data(name):
                raise ConfigError(f"sessions are own recordings or spike files; {name!r} is not "
                                  "one: fit it on its own")
        files = [os.path.realpath(os.path.expanduser(name)) for name in every]  # links followed
        again = next((index for index, file in enumerate(files) if file in files[:index]), None)
        if again is not None:
            first = every[files.index(files[again])]
            same = f" ({first} is that file)" if first != every[again] else ""
            raise ConfigError(f"session {every[again]} is given twice{same}; give each session "
                              "once")
        names = self.session_names
        if names and (len(names) != len(every) or len(set(names)) != len(names)
                      or not all(isinstance(name, str) and name for name in names)):
            raise ConfigError(f"session_names must give {len(every)} different names, one for "
                              f"data and one for each of sessions, got {names}")

    def changed(self, names) -> list[str]:
        """Those of the settings ``names`` that differ from their defaults."""
        defaults = self.defaults(names)
        return [name for name in names if getattr(self, name) != defaults[name]]

    @classmethod
    def defaults(cls, names) -> dict:
        """The settings ``names`` at their defaults."""
        return {field.name: field.default if field.default_factory is MISSING
                else field.default_factory() for field in fields(cls) if field.name in names}

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

    def alone(self, data: str, **changes) -> "Config":
        """These settings (and ``changes``) for ``data`` read as one session."""
        return self.replace(data=data, sessions=[], session_names=[], **changes)


#: the settings that hold conditions on a table's rows (pyrolf/data/where.py)
WHERE = ("trials_where", "units_where")


#: the settings that only NLB datasets take
NLB_OPTIONS = ("phase", "targets", "data_dir")

# What each Python type of a field is called in the words of a JSON file.
TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a finite number",
              str: "a string", type(None): "null", list: "a list of strings"}


@functools.cache
def field_types(cls) -> dict[str, tuple[type, ...]]:
    """``{field name: the types its annotation allows}`` of a dataclass, e.g. ``(str, NoneType)``
    for ``str | None``."""
    hints = typing.get_type_hints(cls)
    return {field.name: (list,) if typing.get_origin(hints[field.name]) is list
            else typing.get_args(hints[field.name]) or (hints[field.name],)
            for field in fields(cls)}


def checked_value(name: str, value, kinds: tuple[type, ...]):
    """``value`` as the first of ``kinds`` (bool, int, float, str, NoneType, list: of strings)
    that takes it: a whole-valued float (``2.0``) is an int, an int is a float, a bool is neither,
    NaN and infinity are no float, a tuple of strings is a list. Raises :class:`ConfigError`
    naming the setting, the value and the types."""
    for kind in kinds:
        if kind is bool or isinstance(value, bool):
            accepted = kind is bool and isinstance(value, bool)
        elif kind is int:
            accepted = isinstance(value, numbers.Integral) or (
                isinstance(value, float) and value.is_integer())
        elif kind is float:
            accepted = isinstance(value, numbers.Real) and math.isfinite(value)
        elif kind is list:  # of strings: the only list a setting holds
            accepted = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
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
