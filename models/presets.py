"""Hyperparameter presets per dataset: what ``pyrolf fit --data NAME`` starts from.

The NLB presets start from the released LangevinFlow code's values (20 ms bins, latent size =
encoder size = 280, Adam lr 3e-3, weight decay 2e-5, KL weight ramped to 0.1 over 500 epochs, 2000
epochs, 50 posterior samples, Δ = 0.01, γ = 0.55 (0.7 on DMFC_RSG), feed-forward 512, the
``oscillators`` potential, whose growth is negligible at that Δ, with Δ, γ and σ fixed as there)
with a batch size scaled to each dataset's number of training trials (the released code: 256 on
MC_Maze). They are GPU-sized; on a laptop lower ``--epochs`` and ``--latent-dim``. A config file or
command-line option overrides any entry; the embedded Lorenz data and spike files use
:class:`~pyrolf.config.Config`'s defaults. A fit from another run's weights (``--init-from``) takes
that run's network settings (:data:`ARCHITECTURE`) over the preset's.
"""

from __future__ import annotations

RELEASED_NLB = {
    "latent_dim": 280, "encoder_hidden": 280, "decoder_feedforward": 512,
    "step": 0.01, "damping": 0.55, "lr": 3e-3, "lr_final": 3e-4, "weight_decay": 2e-5,
    "kl_weight": 0.1, "kl_warmup": 500, "epochs": 2000, "samples": 50, "bin_size_ms": 20,
    "potential": "oscillators", "learn_dynamics": False,
}

BATCH_SIZES = {"mc_maze": 256, "mc_maze_large": 128, "mc_maze_medium": 64, "mc_maze_small": 32,
               "mc_rtt": 128, "area2_bump": 64, "dmfc_rsg": 128}

#: where the released code's settings differ from :data:`RELEASED_NLB`'s
RELEASED_OWN = {"dmfc_rsg": {"damping": 0.7}}

PRESETS = {name: {**RELEASED_NLB, "batch_size": batch, **RELEASED_OWN.get(name, {})}
           for name, batch in BATCH_SIZES.items()}


#: the settings that shape the networks' weights: a run's weights start another fit only where
#: both agree on them (``pyrolf fit --init-from`` takes them from the run unless given; see
#: :mod:`pyrolf.models.transfer`)
ARCHITECTURE = ("prior", "latent_dim", "channels", "potential", "learn_dynamics", "guide",
                "encoder_hidden", "bidirectional", "decoder_width", "decoder_heads",
                "decoder_feedforward")


def preset(data: str) -> dict:
    """The settings ``data`` (a dataset name or a file path) starts from; ``{}`` for the defaults."""
    return dict(PRESETS.get(data, {}))
