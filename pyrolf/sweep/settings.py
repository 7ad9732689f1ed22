"""The settings of a sweep, checked before Ray starts: what ``sweep.json`` holds."""

from __future__ import annotations

import json

from pyrolf.config import Config, ConfigError
from pyrolf.models.presets import ARCHITECTURE
from pyrolf.runs import kept_config
from pyrolf.sweep.space import mutable, search_space

SCHEDULERS = ("asha", "pbt")


def sweep_settings(config: Config, trials: int, scheduler: str = "asha", space: dict | None = None,
                   cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                   concurrent: int | None = None) -> dict:
    """The checked settings of a sweep of ``trials`` configs drawn from the search space
    (``space``: overrides of :data:`~pyrolf.sweep.space.SEARCH_SPACE`) around ``config``, at
    most ``concurrent`` at once (``None``: as many as the resources take).

    ``config`` is kept as a run folder keeps it (:func:`pyrolf.runs.kept_config`: trials run in
    other folders) and ``gpus_per_trial`` above 0 sets ``device`` to ``cuda``. With ``init_from`` the space must leave the network
    settings (:data:`~pyrolf.models.presets.ARCHITECTURE`) at the run's, and the step and damping
    fixed (the run's weights bring theirs). Raises
    :class:`~pyrolf.config.ConfigError`."""
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise ConfigError("--cpus-per-trial must be positive and --gpus-per-trial not negative")
    if concurrent is not None and concurrent < 1:
        raise ConfigError(f"--max-concurrent must be at least 1, got {concurrent}")
    if gpus_per_trial > 0:
        config = config.replace(device="cuda")
    elif config.device == "cuda":
        raise ConfigError("device cuda needs --gpus-per-trial above 0 (Ray hides the GPUs from "
                          "trials that did not ask for one)")
    config = kept_config(config)
    dimensions = search_space(space, config)
    if config.init_from is not None:
        from pyrolf.pipeline import init_source  # torch: only where a run is started from

        init_source(config)  # the run is there, fitted with these network settings
        # the network settings are the run's, and its weights bring their own step and damping
        varied = [name for name in (*ARCHITECTURE, "damping", "step")
                  if name in dimensions and dimensions[name].values != (getattr(config, name),)]
        if varied:
            fixed = ", ".join(f'"{name}": {json.dumps(getattr(config, name))}' for name in varied)
            raise ConfigError(f"--init-from fixes the network settings and takes the run's step "
                              f"and damping, but the search space varies {', '.join(varied)}; "
                              f"fix them with --space (e.g. {{{fixed}}})")
    if scheduler == "pbt" and not mutable(dimensions):
        raise ConfigError("pbt needs a searched entry it can change while trials train (one of "
                          f"{', '.join(n for n, d in dimensions.items() if d.mutable)})")
    return {"config": config.to_dict(), "space": space or {}, "trials": trials,
            "scheduler": scheduler, "cpus_per_trial": cpus_per_trial,
            "gpus_per_trial": gpus_per_trial, "concurrent": concurrent}
