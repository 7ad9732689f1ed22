"""PNG figures of a run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def training_curve(history: list[dict], path: Path) -> None:
    """Training objective (the ELBO with its KL weight, as trained) per trial and validation
    co-bps against epoch."""
    fig, elbo_axis = plt.subplots(figsize=(7, 4))
    epochs = [record["epoch"] for record in history]
    elbo_axis.plot(epochs, [record["elbo"] for record in history], color="C0")
    elbo_axis.set_xlabel("epoch")
    elbo_axis.set_ylabel("training objective per trial\n(ELBO with KL weight as trained)", color="C0")
    scored = [record for record in history if "valid_co_bps" in record]
    if scored:
        bps_axis = elbo_axis.twinx()
        bps_axis.plot([r["epoch"] for r in scored], [r["valid_co_bps"] for r in scored],
                      "o-", color="C1")
        bps_axis.set_ylabel("validation co-bps", color="C1")
    elbo_axis.set_title("Training: ELBO and validation co-bps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
