"""PNG figures of a run."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def subplots(*grid: int, figsize: tuple[float, float], layout: str | None = None, **options):
    """``matplotlib.pyplot.subplots`` without pyplot: ``(figure, axes)`` of a
    :class:`~matplotlib.figure.Figure` of its own, which ``savefig`` draws with Agg, so that
    pyrolf neither chooses nor changes the caller's backend (a notebook's) nor leaves figures
    open."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*grid, **options)


def save_png(fig: Figure, path: Path) -> None:
    """``fig`` to the PNG file ``path``, written atomically (a run stopped meanwhile leaves no
    empty figure)."""
    from pyrolf.runs import RunFolder  # pyrolf.runs needs no figures: not on its import

    path = Path(path)
    RunFolder(path.parent).write_atomically(path.name, lambda partial: fig.savefig(
        partial, dpi=100, format="png"))


def training_curve(history: list[dict], path: Path) -> None:
    """Training objective (the ELBO with its KL weight, as trained) per trial and validation
    co-bps against epoch."""
    fig, elbo_axis = subplots(figsize=(7, 4))
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
    save_png(fig, path)
