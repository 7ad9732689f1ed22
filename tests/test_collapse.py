"""Posterior collapse is measured per latent dimension and never passes silently."""

import json
import math

import numpy as np
import pyro
import pytest
import torch

from pyrolf import Config, fit
from pyrolf.data import load_spike_file, lorenz_dataset, save_spike_file
from pyrolf.evaluation.collapse import (COLLAPSE_KL_PER_BIN, COLLAPSE_SHARE, MISLEADING,
                                        MISLEADING_CO_BPS, UnsplitSite, active_dimensions,
                                        collapse_finding, collapse_warning, kl_per_dimension)
from pyrolf.guides.amortised import MIN_SCALE
from pyrolf.inference.svi import encoder_inputs
from pyrolf.models import build_flow
from pyrolf.pipeline.training import collapse_metrics
from test_cli import run_cli

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32, batch_size=16, samples=3, eval_every=5)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lorenz.h5"
    save_spike_file(path, lorenz_dataset(seed=1, n_conditions=6, trials_per_condition=8,
                                         n_bins=20, n_neurons=12, n_heldout=3, mean_rate=0.5))
    return path


@pytest.fixture(scope="module")
def data(data_file):
    return load_spike_file(data_file)


def _raw(scale: float) -> float:
    """The pre-softplus value that gives ``scale`` after the guides' softplus + MIN_SCALE."""
    return math.log(math.expm1(scale - MIN_SCALE))


@pytest.mark.parametrize(("samples", "draws_per_pass", "forward"),
                         [(1, None, 0), (3, 1000, 0), (1, None, 4)])
def test_kl_per_dimension_is_the_planted_shift_in_the_used_dimensions_and_zero_elsewhere(
        samples, draws_per_pass, forward):
    """A guide equal to the prior except for a constant correction ``m`` of the innovations in
    dims 1 and 5 has KL ``m² / (2 σ²)`` per innovation bin in those dims and exactly 0 in the rest
    (one draw per trial, or three, 333 trials' draws per pass); per observed bin: forward bins,
    where the guide is the prior, do not dilute it (they did, by a fifth on MC_Maze)."""
    config = Config(**TINY)
    flow = build_flow(config, n_neurons=6, n_heldin=4).double().eval()
    guide, sigma = flow.posterior, flow.prior.dynamics.noise_scale.item()
    shift, used = 0.6, [1, 5]
    with torch.no_grad():
        guide.initial.weight.zero_()
        guide.initial.bias.copy_(torch.tensor([0.0] * 16 + [_raw(1.0)] * 16))
        guide.out.weight.zero_()
        correction = torch.zeros(8, dtype=torch.float64)
        correction[used] = shift
        guide.out.bias.copy_(torch.cat([correction, torch.full((8,), _raw(sigma))]))
    n_bins = 12
    inputs = torch.poisson(torch.full((3000, n_bins, 4), 0.5, dtype=torch.float64))
    pyro.set_rng_seed(0)
    kl = kl_per_dimension(flow.model, flow.guide, inputs, n_bins + forward, samples,
                          draws_per_pass)
    expected = shift**2 / (2 * sigma**2) * (n_bins - 1) / n_bins
    others = np.delete(np.arange(8), used)
    assert np.allclose(kl[others], 0.0, atol=1e-9)
    assert kl[used] == pytest.approx([expected] * 2, rel=0.05)
    assert active_dimensions(kl) == 2


def test_only_sites_whose_density_does_not_split_are_unsplit_sites():
    """A correlated (MultivariateNormal) site has no KL per dimension (UnsplitSite, which
    callers report as a note); a guide that does not take LangevinFlow's arguments is another
    error, which is not hidden."""
    def model(inputs, n_bins=None, draws=1):
        with pyro.plate("trials", len(inputs) * draws):
            pyro.sample("u", pyro.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2)))

    def guide(inputs, n_bins=None, draws=1):
        model(inputs, n_bins, draws)

    def old_guide(inputs, n_bins=None):
        model(inputs, n_bins)

    inputs = torch.zeros(3, 4, 2)
    with pytest.raises(UnsplitSite, match="Langevin trajectory sites, not MultivariateNormal"):
        kl_per_dimension(model, guide, inputs, 4)
    with pytest.raises(TypeError, match="draws") as error:
        kl_per_dimension(model, old_guide, inputs, 4)
    assert not isinstance(error.value, UnsplitSite)


def test_collapse_finding_names_what_was_seen():
    assert collapse_finding(0.15, 0.09, 0.3) is None
    assert "co-bps 0.0020" in collapse_finding(0.002, 0.089, 0.4)
    # above 0.01 but a small share of what smoothing finds (issue 14's oscillator fits: 0.014)
    assert collapse_finding(0.014, 0.147, 0.4) is not None
    assert collapse_finding(COLLAPSE_SHARE * 0.147 * 1.01, 0.147, 0.4) is None
    # no signal for smoothing either: not the latents' fault
    assert collapse_finding(0.002, 0.005, 0.4) is None
    quiet = collapse_finding(0.2, 0.1, COLLAPSE_KL_PER_BIN / 2)
    assert quiet is not None and "KL" in quiet and quiet.endswith("the posterior is the prior")
    # latents that predict nothing with a KL far from 0: both said, no collapse to the prior claimed
    far = collapse_finding(0.002, 0.147, 0.63)
    assert far.endswith("the KL of the posterior from the prior ended at 0.6300 nats per "
                        "observed bin")


def test_the_collapse_advice_is_of_the_fit_s_own_settings():
    """Fixed advice told a fit at KL weight 0.001 and batches of 16 to try 0.01 and batches of
    16 (found by a walkthrough)."""
    assert ("--kl-weight 0.01 with --batch-size 16 or --epochs 400: an epoch is 2 steps here; "
            "in Python Config's kl_weight, batch_size and epochs)"
            in collapse_warning("seen", 0.1, 64, 200, 2))
    assert ("--kl-weight 0.0001 with --epochs 60: an epoch is 6 steps here; in Python Config's "
            "kl_weight, epochs)" in collapse_warning("seen", 0.001, 16, 30, 6))
    # an epoch of many steps (MC_Maze's: 9 at batch 256 of 2295 trials is few; 100 is not):
    # no smaller batches, nothing of small sessions
    assert collapse_warning("seen", 0.1, 256, 2000, 100).endswith(
        "(e.g. --kl-weight 0.01 with --epochs 4000; in Python Config's kl_weight, epochs)")


@pytest.mark.parametrize("sweep", [False, True])
def test_the_collapse_advice_names_only_options_of_the_command_that_made_the_run(sweep):
    """A sweep's best trial collapsed was told to use --kl-weight and --batch-size, which
    'pyrolf sweep' has not (a hostile test of sweeps): its advice is in the sweep's options."""
    import re

    from pyrolf.cli.main import cli

    command = cli.commands["sweep" if sweep else "fit"]
    options = {name for param in command.params for name in param.opts}
    for finding in ("seen", collapse_finding(-1.32, -0.015, 0.59)):
        for steps, warmup in ((2, 0), (100, 0), (2, 50)):
            said = collapse_warning(finding, 0.1, 64, 4, steps, warmup, sweep=sweep)
            named = set(re.findall(r"--[a-z][a-z-]*", said))
            assert "--epochs" in named and named <= options, said
    said = collapse_warning("seen", 0.1, 64, 4, 2, sweep=True)
    assert said.endswith('(e.g. a --space file of {"kl_weight": [0.001, 0.01]} with '
                         '"batch_size": 16 in --config or --epochs 8: an epoch is 2 steps here)')
    space = json.loads(re.search(r"\{.*?\]\}", said).group())
    assert space == {"kl_weight": [0.001, 0.01]}  # (a --space file's own form)


def test_rates_worse_than_each_neuron_s_mean_rate_are_found_whatever_the_baseline_scores():
    """A fit at co-bps -0.98 beside a baseline at -0.015 (no signal to catch) said nothing (found
    by a walkthrough): latents that mislead are found however little the data hold."""
    assert "co-bps -0.9800: the rates predict the held-out spikes worse than each neuron's " \
           "mean rate" in collapse_finding(-0.98, -0.015, 0.6)
    assert collapse_finding(MISLEADING_CO_BPS * 1.01, None, None) is not None
    assert collapse_finding(MISLEADING_CO_BPS * 0.99, -0.015, 0.6) is None  # (noise about 0)
    # a few held-out spikes: rates right score below 0, and the baseline alike (a review: 84 %
    # of true-rate fits on 8 trials x 50 bins scored below -0.05); below both it is seen
    assert collapse_finding(-0.085, -0.08, 0.6) is None
    assert collapse_finding(-0.085 + MISLEADING_CO_BPS * 1.01, -0.085, 0.6) is not None
    # below the mean rates where the data hold a signal: said as such (not "no information")
    assert MISLEADING in collapse_finding(-0.3, 0.1, 0.6)
    # the latents used (KL well above the prior's), wrongly: said so, training longer first
    said = collapse_warning(collapse_finding(-1.32, -0.015, 0.59), 0.1, 64, 4, 2)
    assert said.startswith("the fit predicts worse than the neurons' mean rates (best "
                           "validation co-bps -1.3200: ")
    assert "it is not trained enough, or its latents mislead; train longer (--epochs 8)" in said
    # at the prior too: no information, as a collapse
    assert collapse_warning(collapse_finding(-0.3, None, 0.01), 0.1, 64, 4, 2).startswith(
        "the latents carry (almost) no information")


def test_a_fit_shorter_than_its_kl_warm_up_says_so_whatever_it_scores(data, monkeypatch,
                                                                      capsys):
    """A 2-epoch first look at the defaults scored co-bps 0.78 against the baseline's 1.26 and
    said nothing of ending within the warm-up (a review): a note says it, once (a fit flagged
    as collapsed says it in its warning instead); a fit that reaches its KL weight says nothing
    of it."""
    import pyrolf.pipeline

    monkeypatch.setattr(pyrolf.pipeline.training, "collapse_finding", lambda *args: None)
    fit(data, Config(**TINY, epochs=2), progress=False)
    said = [line for line in capsys.readouterr().err.splitlines() if "KL warm-up" in line]
    assert said == ["note: 2 epochs end within the KL warm-up of 50: the KL weight reaches "
                    "0.004 of its 0.1, and the scores of so short a fit say little (train 50 or "
                    "more; kl_warmup in a --config file or Config sets it)"]
    monkeypatch.setattr(pyrolf.pipeline.training, "collapse_finding", lambda *args: "seen")
    fit(data, Config(**TINY, epochs=2), progress=False)
    said = [line for line in capsys.readouterr().err.splitlines() if "KL warm-up" in line]
    assert len(said) == 1 and said[0].startswith("warning: the latents carry (almost) no "
                                                 "information (seen): the fit ended within its "
                                                 "KL warm-up (2 of its 50 epochs)")
    fit(data, Config(**TINY, epochs=2, kl_warmup=2), progress=False)
    assert "KL warm-up" not in capsys.readouterr().err


def test_a_fit_that_ended_within_its_kl_warm_up_is_told_to_train_longer_not_to_lower_the_kl():
    """A newcomer's 4-epoch fit (warm-up 50) was told to lower the KL weight (found by a
    walkthrough): the weight had not reached its value; from the warm-up's end on, the KL advice
    comes back."""
    finding = collapse_finding(0.001, 0.1, 0.01)
    said = collapse_warning(finding, 0.1, 64, 4, 2, warmup=50)
    assert said == (f"the latents carry (almost) no information ({finding}): the fit ended "
                    "within its KL warm-up (4 of its 50 epochs), before it had learned much; "
                    "train longer (--epochs 100, or --resume a run stopped early; in Python "
                    "Config's epochs)")
    assert "--kl-weight 0.01" in collapse_warning(finding, 0.1, 64, 50, 2, warmup=50)
    # a run stopped at epoch 2 of 2000 (an NLB preset's warm-up 500): that, and its own epochs
    # (a review: evaluate of a stopped run told it to lower the KL weight, then 1000 epochs)
    assert "(2 of its 500 epochs), before it had learned much; train longer (--epochs 2000," in (
        collapse_warning(finding, 0.1, 256, 2000, 9, warmup=500, trained=2))
    assert "--kl-weight" not in collapse_warning(collapse_finding(-1.3, -0.01, 0.6), 0.1, 64, 4,
                                                 2, warmup=50)


def test_a_session_whose_latents_predict_nothing_is_found_though_the_pooled_score_is_fine(
        capsys):
    """Pooled, a good session hid one at 0.011 co-bps against its baseline's 0.147 (found by a
    hostile walkthrough)."""
    history = [{"epoch": Config().epochs, "valid_co_bps": 0.3, "kl_per_bin": 0.4}]
    sessions = {"day1": {"co_bps": 0.35, "smoothing_co_bps": 0.3},
                "day2": {"co_bps": 0.011, "smoothing_co_bps": 0.147}}
    pooled = {"co_bps": 0.2, "smoothing_co_bps": 0.25}
    found = collapse_metrics({**pooled, "sessions": sessions}, history, Config(), 3)
    assert found == {"collapsed": True, "collapse": "session day2's test co-bps 0.0110 while the "
                                                    "smoothing baseline scores 0.1470"}
    defaults = Config()
    said = collapse_warning(found["collapse"], defaults.kl_weight, defaults.batch_size,
                            defaults.epochs, 3)
    assert capsys.readouterr().err == f"warning: {said}\n"
    sessions["day2"]["co_bps"] = 0.1
    assert collapse_metrics({**pooled, "sessions": sessions}, history, Config(), 3) == {
        "collapsed": False}
    assert capsys.readouterr().err == ""


def _blind(flow):
    """A decoder that cannot see the latents: its embedding of ``[z, v]`` is 0 and frozen."""
    with torch.no_grad():
        flow.decoder.embed.weight.zero_()
    flow.decoder.embed.weight.requires_grad_(False)
    return flow


@pytest.mark.filterwarnings("ignore:embed.weight was not registered")
def test_a_planted_collapse_is_flagged_and_a_healthy_fit_is_not(data, data_file, tmp_path,
                                                                monkeypatch, capsys):
    config = Config(data=str(data_file), epochs=30, kl_warmup=0, lr=5e-3, **TINY)
    pyro.set_rng_seed(0)
    blind = _blind(build_flow(config, data.n_neurons, data.n_heldin))
    capsys.readouterr()
    collapsed = fit(data, config, flow=blind, run_dir=tmp_path / "blind", progress=False)
    assert collapsed.metrics["smoothing_co_bps"] > 0.02
    assert collapsed.metrics["collapsed"] is True
    assert "co-bps" in collapsed.metrics["collapse"]
    # and the KL, for the user to judge (a decoder blind to the latents: the posterior is the
    # prior's)
    assert "the KL of the posterior from the prior ended at" in collapsed.metrics["collapse"]
    # said from Python too, not only by the CLI
    assert capsys.readouterr().err.startswith("warning: the latents carry (almost) no information")
    saved = json.loads((tmp_path / "blind" / "metrics.json").read_text())
    assert saved["collapsed"] is True

    code, out, err = run_cli(["evaluate", tmp_path / "blind", "--quiet"], monkeypatch, capsys)
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: the latents carry (almost) no information")
    # advice of the fit's own settings: a tenth of its KL weight, more epochs (its batches of
    # 16 are small already)
    assert f"--kl-weight {config.kl_weight / 10:g} with --epochs {2 * config.epochs}:" in lines[0]
    assert "--batch-size" not in lines[0]

    pyro.set_rng_seed(0)
    healthy = fit(data, config, run_dir=tmp_path / "healthy", progress=False)
    assert healthy.metrics["valid_co_bps"] > 0.05
    assert healthy.metrics["collapsed"] is False and "collapse" not in healthy.metrics
    code, _, err = run_cli(["evaluate", tmp_path / "healthy"], monkeypatch, capsys)
    assert code == 0 and "warning" not in err


def test_diagnose_reports_the_kl_of_every_latent_dimension(data, tmp_path):
    from pyrolf import diagnose_run

    config = Config(epochs=5, **TINY)
    pyro.set_rng_seed(0)
    fit(data, config, run_dir=tmp_path / "run", progress=False)
    report = diagnose_run(tmp_path / "run", samples=25, trials=4, data=data)
    saved = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    assert len(saved["kl_per_dimension"]) == config.latent_dim
    assert saved["kl_per_bin"] == pytest.approx(sum(saved["kl_per_dimension"]))
    assert saved["active_dimensions"] == active_dimensions(np.array(report["kl_per_dimension"]))
    assert (tmp_path / "run" / "kl_per_dimension.png").stat().st_size > 0


def test_the_trainer_records_the_kl_per_bin_at_every_validation(data):
    from pyrolf.inference.svi import Trainer

    config = Config(epochs=10, **TINY)
    pyro.set_rng_seed(0)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    history = trainer.fit(progress=False).history
    validated = [r for r in history if "valid_co_bps" in r]
    assert [r["epoch"] for r in validated] == [5, 10]
    assert all(r["kl_per_bin"] > 0 for r in validated)
    (part,) = trainer.parts
    inputs = encoder_inputs(part.valid, part.heldin, 0)
    trainer.flow.eval()
    again = kl_per_dimension(trainer.flow.model, trainer.flow.guide, inputs, data.n_bins, 50).sum()
    assert validated[-1]["kl_per_bin"] == pytest.approx(again, rel=0.3)


def test_a_fit_whose_last_validation_fell_is_judged_by_its_best_one(capsys):
    baseline = 0.25
    good, fallen = 0.3, MISLEADING_CO_BPS - 0.2  # fallen: below 0 and the baseline by far
    history = [{"epoch": 1, "valid_co_bps": good, "kl_per_bin": 0.4},
               {"epoch": 2, "valid_co_bps": fallen, "kl_per_bin": 0.4}]
    metrics = {"co_bps": good, "smoothing_co_bps": baseline}
    assert collapse_metrics(metrics, history, Config(), 3) == {"collapsed": False}
    assert capsys.readouterr().err == ""
    # the same history with its best epoch last is of course no collapse either; and one whose
    # every epoch fell is one (the rule itself still works on this history's shape)
    assert collapse_metrics(metrics, history[::-1], Config(), 3) == {"collapsed": False}
    sunk = [{**record, "valid_co_bps": fallen} for record in history]
    assert collapse_metrics(metrics, sunk, Config(), 3)["collapsed"] is True
