"""The Python API takes data built by hand as the command line takes files: checked before any
work, given the settings' forward bins, and a run folder never reloaded with other data."""

import dataclasses
import json

import numpy as np
import pyro
import pytest
import torch

import pyrolf
from pyrolf.data import DataError, SpikeData, lorenz_dataset
from pyrolf.config import ConfigError
from pyrolf.runs import RunError

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32, batch_size=16, samples=2, eval_every=1)


def small(seed=3, **options):
    return lorenz_dataset(seed=seed, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2, **options)


def spoiled(how: str) -> SpikeData:
    data = small()
    splits = data.splits
    changes = {
        "no_test": {"splits": {"train": splits["train"], "valid": splits["valid"]}},
        "empty_valid": {"splits": {**splits, "valid": np.array([], dtype=int)}},
        "outside": {"splits": {**splits, "test": np.append(splits["test"], 99)}},
        "overlap": {"splits": {**splits, "test": np.append(splits["test"],
                                                          splits["train"][0])}},
        "float_indices": {"splits": {**splits, "test": splits["test"].astype(float)}},
        "no_heldout": {"heldout": np.zeros(10, bool)},
        "heldout_length": {"heldout": np.ones(3, bool)},
        "flat": {"spikes": data.spikes[:, 0]},
        "nan": {"spikes": np.where(np.arange(10) == 4, np.nan, data.spikes)},
        "negative": {"spikes": -data.spikes},
        "rates": {"spikes": data.spikes + 0.5},
        "forward": {"n_forward": 12},
        "no_splits": {"splits": None},
        "bin_size": {"bin_size": -0.01},
        "bin_size_ns": {"bin_size": 1e-9},
    }[how]
    return dataclasses.replace(data, **changes)


@pytest.mark.parametrize("how, fragment", [
    ("no_test", "splits['test'] must be a non-empty"),
    ("empty_valid", "splits['valid'] must be a non-empty"),
    ("outside", "trial indices in 0..23"),
    ("overlap", "is in more than one split"),
    ("float_indices", "splits['test'] must be a non-empty 1-D array of trial indices"),
    ("no_heldout", "`heldout` marks no neurons"),
    ("heldout_length", "`heldout` has shape (3,) but there are 10 neurons"),
    ("flat", "not 3-D"),
    ("nan", "NaN"),
    ("negative", "negative values"),
    ("rates", "non-integer values"),
    ("forward", "n_forward 12 must leave an observed bin"),
    ("no_splits", "splits must be a dict of trial indices, got NoneType"),
    ("bin_size", "`bin_size` must be one positive number, the bin width in seconds"),
    ("bin_size_ns", "`bin_size` 1e-09 s is below 10 µs, finer than spike times are kept"),
])
def test_unusable_data_built_by_hand_are_one_line_before_any_work(how, fragment, tmp_path):
    with pytest.raises(DataError, match=None) as refused:
        pyrolf.fit(spoiled(how), pyrolf.Config(epochs=1, **TINY), run_dir=tmp_path / "run",
                   progress=False)
    message = str(refused.value)
    assert fragment in message and "\n" not in message and "the data (lorenz)" in message
    assert not (tmp_path / "run").exists()


def test_a_bin_width_given_in_python_is_the_data_s(tmp_path):
    """Given, the bin width puts times in seconds and lets the PSTHs be smoothed and scored;
    not given (the default), times stay in bins."""
    data = dataclasses.replace(small(), bin_size=0.02)
    result = pyrolf.fit(data, pyrolf.Config(epochs=1, **TINY), progress=False)
    assert "psth_r2" in result.metrics
    inferred = pyrolf.infer(result, samples=2, progress=False)
    assert inferred["time"].attrs["units"] == "s"
    np.testing.assert_allclose(inferred["time"], 0.02 * np.arange(data.n_bins))
    plain = pyrolf.fit(small(), pyrolf.Config(epochs=1, **TINY), progress=False)
    assert "psth_r2" not in plain.metrics
    assert pyrolf.infer(plain, samples=2, progress=False)["time"].attrs["units"] == "bin"


def test_a_fit_says_when_its_valid_or_test_trials_are_too_few_to_score(capsys):
    """Data of 3 trials were trained and scored on one trial each without a word (a hostile
    test of sessions); data of 24 are not noted."""
    few = lorenz_dataset(seed=3, n_conditions=1, trials_per_condition=3, n_bins=12,
                         n_neurons=10, n_heldout=2)
    pyrolf.fit(few, pyrolf.Config(epochs=1, **TINY), progress=False)
    assert (f"note: {few.name}: 1 valid trial and 1 test trial of its 3: the best epoch is chosen "
            "on the valid trials") in capsys.readouterr().err
    pyrolf.fit(small(), pyrolf.Config(epochs=1, **TINY), progress=False)
    assert "test trial" not in capsys.readouterr().err


def test_arguments_of_the_wrong_kind_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="config must be a pyrolf.Config, got dict"):
        pyrolf.fit(small(), {"epochs": 1}, progress=False)
    result = pyrolf.fit(small(), pyrolf.Config(epochs=1, **TINY), progress=False)
    with pytest.raises(ConfigError, match=r"samples \(--samples\) must be a whole number, got 2.5"):
        pyrolf.infer(result, samples=2.5, progress=False)
    with pytest.raises(ConfigError, match=r"must be at least 1, got 0"):
        pyrolf.infer(result, samples=0, progress=False)
    with pytest.raises(ConfigError, match=r"must be a whole number, got 30.5"):
        pyrolf.diagnose_run(tmp_path, samples=30.5)  # (before the folder is read)
    with pytest.raises(ConfigError, match=r"device \(--device\) must be cpu or cuda, got 'gpu'"):
        pyrolf.infer(result, samples=2, device="gpu", progress=False)
    with pytest.raises(RunError, match="a run folder is given by its path, got int 42"):
        pyrolf.infer(42, progress=False)


def test_numbers_that_are_no_spike_data_are_refused_by_name(tmp_path):
    with pytest.raises(DataError, match="must be a pyrolf.data.SpikeData .* got ndarray"):
        pyrolf.fit(small().spikes, pyrolf.Config(epochs=1, **TINY), progress=False)


def test_counts_of_any_number_type_and_flags_of_0_1_are_taken():
    data = small()
    loose = dataclasses.replace(data, spikes=data.spikes.astype(np.int64),
                                heldout=data.heldout.astype(int))
    result = pyrolf.fit(loose, pyrolf.Config(epochs=1, **TINY), progress=False)
    assert result.data.spikes.dtype == np.float32 and result.data.heldout.dtype == bool
    np.testing.assert_array_equal(result.data.heldout, data.heldout)


def test_the_settings_forward_bins_are_held_back_from_data_built_by_hand():
    config = pyrolf.Config(epochs=1, forward_bins=3, **TINY)
    result = pyrolf.fit(small(), config, progress=False)
    assert result.data.n_forward == 3 and "fp_bps" in result.metrics
    with pytest.raises(DataError, match="has 2 forward bins but the settings ask for 3"):
        pyrolf.fit(dataclasses.replace(small(), n_forward=2), config, progress=False)


def test_a_run_fitted_on_data_from_python_is_never_reloaded_with_other_data(tmp_path):
    data = small()
    run = tmp_path / "run"
    pyrolf.fit(data, pyrolf.Config(epochs=1, **TINY), run_dir=run, progress=False)
    # its config.json names the default data, the embedded Lorenz set: not what it was fitted on
    with pytest.raises(RunError, match="was fitted on other data \\(24x12x10\\)"):
        pyrolf.load_run(run)
    with pytest.raises(RunError, match="the data given are not those"):
        pyrolf.evaluate_run(run, data=small(seed=4), progress=False)
    # data named by a path (a name fitted.json keeps as text: it was not JSON, a review)
    named = pyrolf.fit(dataclasses.replace(data, name=tmp_path / "session.h5"),
                       pyrolf.Config(epochs=1, **TINY), run_dir=tmp_path / "named",
                       progress=False)
    assert json.loads((tmp_path / "named" / "fitted.json").read_text())["names"] == [
        str(tmp_path / "session.h5")] and named.data.name == tmp_path / "session.h5"
    flow, _, again = pyrolf.load_run(run, data=data)  # (checked: a copy of them)
    np.testing.assert_array_equal(again.spikes, data.spikes)
    assert again.splits.keys() == data.splits.keys()
    metrics = pyrolf.evaluate_run(run, data=data, progress=False)
    assert np.isfinite(metrics["co_bps"])
    # the same counts with other held-out neurons or splits would score other neurons or trials
    swapped = dataclasses.replace(data, heldout=data.heldout[::-1].copy())
    train, valid, test = (data.splits[name] for name in ("train", "valid", "test"))
    shuffled = dataclasses.replace(data, splits={"train": np.concatenate([train[3:], test]),
                                                 "valid": valid, "test": train[:3]})
    for other in (swapped, shuffled):
        with pytest.raises(RunError, match="the data given hold the counts .* but other held-out "
                                           "neurons or train/valid/test splits"):
            pyrolf.evaluate_run(run, data=other, progress=False)
    # new trials through the run folder, its own data given as fitted_on
    new = small(seed=4)
    inferred = pyrolf.infer(run, data=new, samples=2, progress=False, fitted_on=data)
    assert (inferred["split"].values == "new").all() and inferred.sizes["trial"] == new.n_trials
    # and without them: the run's layout.pt lays new trials out alike
    alone = pyrolf.infer(run, data=new, samples=2, progress=False)
    assert alone.identical(inferred)
    assert (pyrolf.infer(run, data=data, samples=2, progress=False, fitted_on=data)["split"]
            .values != "new").all()  # (its own, as without new trials)
    with pytest.raises(DataError, match="fitted_on must be the pyrolf.data.SpikeData .* got str"):
        pyrolf.infer(run, data=new, samples=2, progress=False, fitted_on=str(run))
    # a run recorded before fitted.json kept the roles: its counts alone are compared
    fitted = json.loads((run / "fitted.json").read_text())
    roles = fitted["data"].pop("roles")
    (run / "fitted.json").write_text(json.dumps(fitted))
    taken = pyrolf.load_run(run, data=swapped)[2]  # (checked: a copy of them)
    np.testing.assert_array_equal(taken.heldout, swapped.heldout)
    np.testing.assert_array_equal(taken.spikes, swapped.spikes)
    # resumed, it keeps the roles of the data it goes on with, and checks them again
    pyrolf.resume(run, epochs=2, data=data, progress=False)
    assert json.loads((run / "fitted.json").read_text())["data"]["roles"] == roles
    with pytest.raises(RunError, match="other held-out neurons"):
        pyrolf.load_run(run, data=swapped)
    # counts alone, on the run's neurons: read as the same trials given as SpikeData are (it
    # was refused, "got ndarray": an API walkthrough)
    pyro.set_rng_seed(0)
    as_data = pyrolf.infer(run, data=dataclasses.replace(data, splits={}), samples=2,
                           progress=False)
    pyro.set_rng_seed(0)
    as_array = pyrolf.infer(run, data=data.spikes, samples=2, progress=False)
    np.testing.assert_array_equal(as_array["rates"].values, as_data["rates"].values)
    with pytest.raises(DataError, match="got list"):
        pyrolf.infer(run, data=data.spikes.tolist())
    # (NaN is a count not recorded; an infinite count is none)
    infinite = dataclasses.replace(data, spikes=np.where(data.spikes > 2, np.inf, data.spikes))
    with pytest.raises(DataError, match="infinite values"):
        pyrolf.infer(run, data=infinite)


def test_behaviour_given_in_python_is_decoded_and_exported_and_checked_before_the_fit():
    """``extra["behavior"]`` alone, as the SpikeData docstring says: decoded (lag 0) and in
    inferred.nc; of another shape, or a lag no trial holds, one line before any training (it
    trained, then failed on keys the user could not know: an API walkthrough)."""
    data = small()
    rng = np.random.default_rng(0)
    behavior = data.rates[..., :2] + rng.normal(0, 0.01, data.rates.shape[:2] + (2,))
    given = dataclasses.replace(data, extra={"behavior": behavior})
    result = pyrolf.fit(given, pyrolf.Config(epochs=1, **TINY), progress=False)
    assert np.isfinite(result.metrics["behavior_r2"])
    inferred = pyrolf.infer(result, samples=2, progress=False)
    assert inferred["behavior"].dims == ("trial", "time", "behavior_dim")
    np.testing.assert_allclose(inferred["behavior"].values, behavior.astype(np.float32))
    assert "behavior" in inferred["behavior"].attrs["long_name"]
    for extra, fragment in [({"behavior": behavior[:, :5]}, "has shape (24, 5, 2) but the "
                             "spikes have 24 trials of 12 bins"),
                            ({"behavior": behavior, "behavior_lag_bins": 12},
                             "must be a whole number of bins shorter than a trial's 12 "
                             "observed bins"),
                            ({"behavior": np.where(behavior > 0, np.inf, behavior)},
                             "holds infinite values"),
                            ({"behavior": np.full_like(behavior, np.nan)},
                             "is NaN (unknown) in every bin"),
                            ({"behavior": behavior[..., :0]}, "no dimension")]:
        with pytest.raises(DataError, match=None) as refused:
            pyrolf.fit(dataclasses.replace(data, extra=extra),
                       pyrolf.Config(epochs=1, **TINY), progress=False)
        assert fragment in str(refused.value) and "\n" not in str(refused.value)
    # new trials need no behaviour known: they are not scored (refused as unknown throughout)
    unknown = dataclasses.replace(given, spikes=given.spikes[:2], rates=None, conditions=None,
                                  extra={"behavior": np.full_like(behavior[:2], np.nan)})
    assert np.isnan(pyrolf.infer(result, data=unknown, samples=2,
                                 progress=False)["behavior"]).all()
    # a lag the forward bins leave no observed bins for (behavior_r2 came out NaN: a review)
    with pytest.raises(DataError, match="--forward-bins 5 leaves 7 observed bins, not more than "
                                        "the behaviour's lag of 8 bins"):
        pyrolf.fit(dataclasses.replace(data, extra={"behavior": behavior, "behavior_lag_bins": 8}),
                   pyrolf.Config(epochs=1, forward_bins=5, **TINY), progress=False)


def test_data_given_again_are_checked_and_given_their_forward_bins_as_the_fit_s(tmp_path):
    """A run fitted with forward bins, evaluated with its data given again: scored as the fit
    scored them (they were taken without their forward bins: no fp_bps, other co-bps, and
    metrics.json overwritten; a review); behaviour given again is checked (a KeyError)."""
    data = small()
    config = pyrolf.Config(epochs=1, forward_bins=3, **TINY)
    fitted = pyrolf.fit(data, config, run_dir=tmp_path / "run", progress=False).metrics
    again = pyrolf.evaluate_run(tmp_path / "run", data=data, progress=False)
    assert "fp_bps" in fitted and again["fp_bps"] == pytest.approx(fitted["fp_bps"], abs=1e-6)
    assert again["co_bps"] == pytest.approx(fitted["co_bps"], abs=1e-6)
    flow, _, loaded = pyrolf.load_run(tmp_path / "run", data=data)
    assert loaded.n_forward == 3 and data.n_forward == 0  # (the data given are not changed)


def test_infer_of_a_single_new_trial_and_a_flow_of_the_wrong_kind(tmp_path):
    """One or two new trials are inferred (a fit's minimum of 3 refused them), and a flow= that
    is no model is one line (an AttributeError), one of other sizes blamed on itself, not on
    config.json (a review)."""
    from pyrolf.models import build_flow

    data = small()
    config = pyrolf.Config(epochs=1, **TINY)
    pyrolf.fit(data, config, run_dir=tmp_path / "run", progress=False)
    one = pyrolf.infer(tmp_path / "run", data=data.spikes[:1], samples=2, progress=False)
    assert one.sizes["trial"] == 1
    with pytest.raises(pyrolf.config.ConfigError, match="flow must be the model the run was "
                                                        "fitted with.*got str"):
        pyrolf.load_run(tmp_path / "run", data=data, flow="flow")
    other = build_flow(config.replace(latent_dim=16), data.n_neurons, data.n_heldin)
    with pytest.raises(RunError, match="does not fit the flow given"):
        pyrolf.load_run(tmp_path / "run", data=data, flow=other)


def test_the_diagnosis_of_data_given_in_python_names_them_as_its_source(tmp_path):
    """posterior.nc said source "lorenz" (the Config's default data) of a run fitted and
    diagnosed on a SpikeData given in Python (an API walkthrough)."""
    import xarray as xr

    data = dataclasses.replace(small(), name="my_session")
    pyrolf.fit(data, pyrolf.Config(epochs=1, **TINY), run_dir=tmp_path / "run", progress=False)
    pyrolf.diagnose_run(tmp_path / "run", samples=25, data=data, progress=False)
    with xr.open_dataset(tmp_path / "run" / "posterior.nc", group="posterior") as posterior:
        assert posterior.attrs["source"] == "my_session"


@pytest.mark.parametrize("part, fragment", [
    ("decoder", "gives rates of shape (12, 9) per trial, not (bins, neurons) (12, 10)"),
    ("encoder", "does not fit the data (input.size(-1) must be equal to input_size. Expected 10, "
                "got 8)"),
    ("latent", "does not fit the data (mat1 and mat2 shapes cannot be multiplied"),
    ("prior", "does not fit the data (Model and guide shapes disagree at site"),
    # (it fitted, then the first validation, 10 epochs on, failed in Pyro: an API walkthrough)
    ("draws", "does not fit the data (Shape mismatch inside plate('trials')"),
])
def test_a_model_built_in_python_that_does_not_fit_the_data_is_one_line(part, fragment):
    """Refused before the fit, not deep in Pyro with a dump of trace shapes."""
    from pyrolf.models import build_flow

    data, config = small(), pyrolf.Config(epochs=1, **TINY)
    neurons, heldin = data.n_neurons - (part == "decoder"), data.n_heldin + 2 * (part == "encoder")
    flow = build_flow(config, neurons, heldin)
    if part == "latent":
        flow.guide = build_flow(config.replace(latent_dim=16), neurons, heldin).guide
    if part == "prior":  # of another latent size, whose force the guide does not read
        from pyrolf.dynamics import FreeParticle, LangevinDynamics, LangevinPrior

        flow.prior = LangevinPrior(LangevinDynamics(FreeParticle()), 16)
    if part == "draws":  # a guide that gives one row per trial whatever draws it is asked for
        class OneDraw(torch.nn.Module):
            def __init__(self, guide):
                super().__init__()
                self.guide = guide

            def forward(self, dynamics, inputs, n_bins, stepwise=False, draws=1):
                return self.guide(dynamics, inputs, n_bins, stepwise)

        flow.posterior = OneDraw(flow.posterior)
    with pytest.raises(ConfigError, match=None) as refused:
        pyrolf.fit(data, config, flow=flow, progress=False)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


def test_a_run_of_a_model_built_in_python_is_not_reloaded_as_another(tmp_path):
    """The same weights' names and shapes, another class: config.json cannot say which."""
    from pyrolf.dynamics import FreeParticle, LangevinPrior, OverdampedDynamics
    from pyrolf.models import build_flow

    data, config = small(), pyrolf.Config(epochs=1, **TINY)
    flow = build_flow(config, data.n_neurons, data.n_heldin)
    flow.prior = LangevinPrior(OverdampedDynamics(FreeParticle()), config.latent_dim)
    pyrolf.fit(data, config, flow=flow, run_dir=tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="a model built in Python \\(prior.dynamics: "
                                       "pyrolf.dynamics.langevin.OverdampedDynamics, where "
                                       "config.json's settings build "
                                       "pyrolf.dynamics.langevin.LangevinDynamics.*give it: "
                                       "flow= of load_run"):
        pyrolf.load_run(tmp_path / "run", data=data)

    def built():  # the model again, as a later session builds it
        again = build_flow(config, data.n_neurons, data.n_heldin)
        again.prior = LangevinPrior(OverdampedDynamics(FreeParticle()), config.latent_dim)
        return again

    # given again, it takes the run's weights, and every later step runs on it (none did)
    loaded = pyrolf.load_run(tmp_path / "run", data=data, flow=built())[0]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)["flow"]
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0, msg=name)
    assert pyrolf.evaluate_run(tmp_path / "run", data=data, flow=built(),
                               progress=False)["weights"] == "best.pt"
    assert pyrolf.diagnose_run(tmp_path / "run", samples=25, data=data, flow=built(),
                               progress=False)["samples"] == 25
    inferred = pyrolf.infer(tmp_path / "run", data=data, flow=built(), samples=2, progress=False)
    assert inferred.sizes["trial"] == data.n_trials
    assert pyrolf.resume(tmp_path / "run", epochs=2, data=data, flow=built(),
                         progress=False).metrics["epochs"] == 2
    with pytest.raises(RunError, match="where the flow given is "
                                       "pyrolf.dynamics.langevin.LangevinDynamics"):
        pyrolf.load_run(tmp_path / "run", data=data,
                        flow=build_flow(config, data.n_neurons, data.n_heldin))
    # one the settings do build reloads as it was
    pyrolf.fit(data, config, run_dir=tmp_path / "plain", progress=False)
    assert type(pyrolf.load_run(tmp_path / "plain", data=data)[0].prior).__name__ == "LangevinPrior"
