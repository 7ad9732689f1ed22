"""The generated NLB files: nlb_tools 0.0.4 runs on them unmodified, and they hold the planted
latent structure."""

import numpy as np
import pytest
from nlb_tools.evaluation import evaluate
from nlb_tools.make_tensors import (PARAMS, make_eval_input_tensors, make_eval_target_tensors,
                                    make_train_input_tensors)
from nlb_tools.nwb_interface import NWBDataset
from pynwb import NWBHDF5IO

from pyrolf.data.dandi import DANDISETS
from pyrolf.data.nlb_synthetic import LAYOUTS, simulate_nlb, write_nlb_files
from pyrolf.evaluation.smoothing import smooth_spikes

SEED = 3
BIN_MS = 20
#: the metrics nlb_tools' evaluate gives each layout
METRICS = {"mc_maze": {"co-bps", "vel R2", "psth R2", "fp-bps"},
           "mc_rtt": {"co-bps", "vel R2", "fp-bps"},
           "area2_bump": {"co-bps", "vel R2", "psth R2", "fp-bps"},
           "dmfc_rsg": {"co-bps", "tp corr", "psth R2", "fp-bps"}}
#: trial columns nlb_tools reads, beyond start_time, stop_time and split
TRIAL_COLUMNS = {"mc_maze": {"move_onset_time", "trial_type", "trial_version"},
                 "mc_rtt": set(),
                 "area2_bump": {"move_onset_time", "ctr_hold_bump", "cond_dir"},
                 "dmfc_rsg": {"go_time", "set_time", "is_outlier", "is_eye", "theta", "is_short",
                              "ts", "tp"}}
NAMES = [*METRICS, "mc_maze_small"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``{dataset: (train_path, test_path)}`` of default-size files, written once."""
    folder = tmp_path_factory.mktemp("dandi")
    return {name: write_nlb_files(folder, name, seed=SEED) for name in NAMES}


def load_20ms(path):
    dataset = NWBDataset(str(path))
    dataset.resample(BIN_MS)
    return dataset


def result_of(results, name):
    """The metrics ``evaluate`` gives dataset ``name``, keyed without the scaling prefix."""
    if name.startswith("mc_maze_"):
        [entry] = [e["mc_maze_scaling_20_split"] for e in results if "mc_maze_scaling_20_split" in e]
        return {key.split(" ", 1)[1]: value for key, value in entry.items()}
    [entry] = [e[f"{name}_20_split"] for e in results if f"{name}_20_split" in e]
    return entry


def smoothing_submission(name, train, evals, n_forward):
    """Held-in rates: Gaussian-smoothed held-in spikes; held-out and forward rates: each
    neuron's mean count per bin over the train trials.  Shapes ``(trials, time, neurons)``."""
    def constant(mean, trials, bins):
        return np.broadcast_to(mean, (trials, bins, len(mean))).copy()

    heldin_mean = np.nanmean(train["train_spikes_heldin"], axis=(0, 1))
    heldout_mean = np.nanmean(train["train_spikes_heldout"], axis=(0, 1))
    n_train, n_bins, _ = train["train_spikes_heldin"].shape
    n_eval = evals["eval_spikes_heldin"].shape[0]
    return {f"{name}_20": {
        "train_rates_heldin": smooth_spikes(train["train_spikes_heldin"], 2.0),
        "train_rates_heldout": constant(heldout_mean, n_train, n_bins),
        "eval_rates_heldin": smooth_spikes(evals["eval_spikes_heldin"], 2.0),
        "eval_rates_heldout": constant(heldout_mean, n_eval, n_bins),
        "eval_rates_heldin_forward": constant(heldin_mean, n_eval, n_forward),
        "eval_rates_heldout_forward": constant(heldout_mean, n_eval, n_forward),
    }}


def true_rates_submission(name, dataset, session):
    """The true rates of ``session`` (counts per 20 ms bin) as a submission, cut into trials by
    nlb_tools' own tensor makers."""
    rates = session.rates
    binned = np.add.reduceat(rates, np.arange(0, len(rates), BIN_MS), axis=0)
    for field, spikes in (("true_heldin", "spikes"), ("true_heldout", "heldout_spikes")):
        ids = dataset.data[spikes].columns
        dataset.add_continuous_data(binned[:, ids.astype(int)], field, chan_names=ids)
    fields = {"spk_field": "true_heldin", "hospk_field": "true_heldout"}
    train = make_train_input_tensors(dataset, name, "train", update_params=fields,
                                     save_file=False)
    evals = make_train_input_tensors(dataset, name, "val", update_params=fields, save_file=False,
                                     include_forward_pred=True)
    return {f"{name}_20": {
        "train_rates_heldin": train["train_spikes_heldin"],
        "train_rates_heldout": train["train_spikes_heldout"],
        "eval_rates_heldin": evals["train_spikes_heldin"],
        "eval_rates_heldout": evals["train_spikes_heldout"],
        "eval_rates_heldin_forward": evals["train_spikes_heldin_forward"],
        "eval_rates_heldout_forward": evals["train_spikes_heldout_forward"],
    }}


def r2(target, prediction):
    return 1.0 - np.sum((target - prediction) ** 2) / np.sum((target - target.mean(0)) ** 2)


@pytest.mark.parametrize("name", NAMES)
def test_files_are_named_and_placed_as_dandi_download_does(name, files):
    dandiset, subject = DANDISETS[name]
    train_path, test_path = files[name]
    assert train_path.parent == test_path.parent
    assert train_path.parent.parts[-2:] == (dandiset, subject)
    assert train_path.name.startswith(subject + "_")
    assert train_path.name.endswith("_desc-train_behavior+ecephys.nwb")
    assert test_path.name.endswith("_desc-test_ecephys.nwb")
    assert sorted(train_path.parent.glob("*.nwb")) == sorted([train_path, test_path])


@pytest.mark.parametrize("name", list(METRICS))
def test_units_trials_and_behaviour_hold_the_fields_nlb_tools_reads(name, files):
    train_path, test_path = files[name]
    with NWBHDF5IO(str(train_path), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        trials = nwb.trials.to_dataframe()
        behavior = {name: (series.rate, series.comments, series.data.shape)
                    for module in nwb.processing.values()
                    for name, series in module.data_interfaces.items()}
        assert set(nwb.processing) <= {"behavior"}
    with NWBHDF5IO(str(test_path), "r") as io:
        nwb = io.read()
        test_units = nwb.units.to_dataframe()
        test_trials = nwb.trials.to_dataframe()
        assert len(nwb.processing) == 0

    assert units.heldout.dtype == bool and units.heldout.sum() == 4 and len(units) == 16
    end = max(interval[-1][-1] for interval in units.obs_intervals)
    for spikes in units.spike_times:
        assert np.all(np.diff(spikes) >= 0) and spikes[0] >= 0 and spikes[-1] < end
    assert trials.stop_time.iloc[-1] < end
    assert set(trials.split) == {"train", "val"} and (trials.split == "val").mean() == 0.2
    assert TRIAL_COLUMNS[LAYOUTS[name]] | {"start_time", "stop_time", "split"} <= set(trials)
    assert np.all(trials.start_time.to_numpy()[1:] >= trials.stop_time.to_numpy()[:-1])

    # the test file: held-in units only, same ids, heldout present and all False
    assert list(test_units.index) == list(units.index[~units.heldout])
    assert "heldout" in test_units and not test_units.heldout.any()
    assert set(test_trials.split) == {"test"} and len(test_trials) == 10
    assert list(test_trials.columns) == list(trials.columns)

    if name == "dmfc_rsg":
        assert behavior == {}
    else:
        [(field, (rate, comments, shape))] = behavior.items()
        assert field == PARAMS[name]["behavior_field"]
        assert rate == 1000.0 and comments == "columns=[x,y]"
        assert shape[1] == 2 and shape[0] / rate <= end  # no sample past the observed end


@pytest.mark.parametrize("name", NAMES)
def test_nlb_tools_make_tensors_and_evaluate_run_on_the_val_phase(name, files):
    dataset = load_20ms(files[name][0])
    train = make_train_input_tensors(dataset, name, "train", save_file=False,
                                     include_forward_pred=True)
    evals = make_eval_input_tensors(dataset, name, "val", save_file=False)
    targets = make_eval_target_tensors(dataset, name, "train", "val", save_file=False,
                                       include_psth=True)
    n_bins = np.diff(PARAMS[name]["make_params"]["align_range"])[0] // BIN_MS
    n_forward = PARAMS[name]["fp_len"] // BIN_MS
    assert train["train_spikes_heldin"].shape == (32, n_bins, 12)
    assert train["train_spikes_heldout"].shape == (32, n_bins, 4)
    assert train["train_spikes_heldin_forward"].shape == (32, n_forward, 12)
    assert evals["eval_spikes_heldin"].shape == (8, n_bins, 12)
    target = targets[f"{name}_20"]
    assert target["eval_spikes_heldout"].shape == (8, n_bins, 4)
    assert not np.isnan(train["train_spikes_heldin"]).any()

    results = evaluate(targets, smoothing_submission(name, train, evals, n_forward))
    scores = result_of(results, name)
    assert set(scores) == METRICS[LAYOUTS[name]]
    assert all(np.isfinite(value) for value in scores.values()), scores


@pytest.mark.parametrize("name", list(METRICS))
def test_nlb_tools_load_both_files_for_the_test_phase(name, files):
    """As the NLB tutorials do for the test phase: the whole subject folder (nlb_tools stacks
    the files in name order, the test file first, as with the DANDI files)."""
    dataset = load_20ms(files[name][0].parent)
    assert dataset.trial_info.split.value_counts().to_dict() == {"train": 32, "test": 10, "val": 8}
    inputs = make_eval_input_tensors(dataset, name, "test", save_file=False)
    train = make_train_input_tensors(dataset, name, ["train", "val"], save_file=False)
    n_bins = np.diff(PARAMS[name]["make_params"]["align_range"])[0] // BIN_MS
    assert set(inputs) == {"eval_spikes_heldin"}
    assert inputs["eval_spikes_heldin"].shape == (10, n_bins, 12)
    assert not np.isnan(inputs["eval_spikes_heldin"]).any()
    assert train["train_spikes_heldout"].shape == (40, n_bins, 4)


@pytest.mark.parametrize("name", ["mc_maze", "area2_bump"])
def test_true_rates_beat_smoothing_on_every_official_metric(name, files):
    """The planted rates carry what the benchmark scores: held-out activity, lagged velocity and
    the condition PSTHs."""
    dataset = load_20ms(files[name][0])
    train = make_train_input_tensors(dataset, name, "train", save_file=False)
    evals = make_eval_input_tensors(dataset, name, "val", save_file=False)
    targets = make_eval_target_tensors(dataset, name, "train", "val", save_file=False,
                                       include_psth=True)
    n_forward = PARAMS[name]["fp_len"] // BIN_MS
    smoothing = result_of(evaluate(targets, smoothing_submission(name, train, evals, n_forward)),
                          name)
    session, _ = simulate_nlb(name, seed=SEED)
    truth = result_of(evaluate(targets, true_rates_submission(name, dataset, session)), name)
    assert truth["co-bps"] > max(0.03, smoothing["co-bps"])
    assert truth["vel R2"] > max(0.5, smoothing["vel R2"])
    assert truth["psth R2"] > max(0.3, smoothing["psth R2"])


def test_mc_maze_true_rates_predict_the_forward_window(files):
    """Reaches last into NLB's forward window (200 ms after the evaluation window), so the true
    rates score there: their fp-bps (nlb_tools) is clearly above the null's 0."""
    dataset = load_20ms(files["mc_maze"][0])
    targets = make_eval_target_tensors(dataset, "mc_maze", "train", "val", save_file=False)
    session, _ = simulate_nlb("mc_maze", seed=SEED)
    truth = result_of(evaluate(targets, true_rates_submission("mc_maze", dataset, session)),
                      "mc_maze")
    assert truth["fp-bps"] > 0.02


def test_velocity_is_the_latent_readout_lag_ms_later(files):
    session, _ = simulate_nlb("mc_maze", seed=SEED)
    dataset = NWBDataset(str(files["mc_maze"][0]))
    velocity = dataset.data.hand_vel.to_numpy()
    latents = session.latents
    assert len(velocity) == len(latents)
    lag = PARAMS["mc_maze"]["lag"]

    def fit(shift):
        x = np.column_stack([latents[:len(latents) - shift], np.ones(len(latents) - shift)])
        y = velocity[shift:]
        return r2(y, x @ np.linalg.lstsq(x, y, rcond=None)[0])

    assert fit(lag) > 0.999
    assert fit(0) < 0.9


def test_trials_of_one_condition_share_their_psth(files):
    """Split each condition's trials in halves: the half-PSTHs (all neurons, read back by
    nlb_tools) match the other half of their own condition best."""
    dataset = load_20ms(files["mc_maze"][0])
    params = PARAMS["mc_maze"]["make_params"]
    trial_data = dataset.make_trial_data(**params)
    trial_ids, counts = zip(*[(trial_id, trial[["spikes", "heldout_spikes"]].to_numpy())
                              for trial_id, trial in trial_data.groupby("trial_id")])
    counts = np.stack(counts)  # (trials, time, neurons)
    conditions = dataset.trial_info.set_index("trial_id").loc[
        list(trial_ids), ["trial_type", "trial_version"]].to_numpy()
    labels = np.unique(conditions, axis=0, return_inverse=True)[1].ravel()
    halves = [[], []]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        for half, chosen in zip(halves, (members[::2], members[1::2])):
            half.append(smooth_spikes(counts[chosen], 2.0).mean(axis=0).ravel())
    similarity = np.corrcoef(halves[0], halves[1])[:len(halves[0]), len(halves[0]):]
    assert np.all(np.argmax(similarity, axis=1) == np.arange(len(similarity)))


def test_produced_interval_sets_the_neural_speed_from_set_to_go():
    """dmfc_rsg: within each (is_eye, theta, is_short) group the true rates move faster between
    set and go on trials with a shorter tp, which is what tp corr measures."""
    session, _ = simulate_nlb("dmfc_rsg", seed=SEED)
    rates = session.rates
    trials = session.trials[~session.trials.is_outlier]
    speeds = [np.mean(np.linalg.norm(np.diff(rates[round(1000 * t.set_time):round(1000 * t.go_time)
                                                   :BIN_MS], axis=0), axis=1))
              for t in trials.itertuples()]
    trials = trials.assign(speed=speeds)
    correlations = [np.corrcoef(group.speed, group.tp)[0, 1]
                    for _, group in trials.groupby(["is_eye", "theta", "is_short"])]
    assert len(correlations) == 4
    assert np.mean(correlations) < -0.5


def test_same_seed_same_recording_and_other_seeds_differ():
    first, first_test = simulate_nlb("area2_bump", seed=5)
    again, _ = simulate_nlb("area2_bump", seed=5)
    other, _ = simulate_nlb("area2_bump", seed=6)
    assert first.trials.equals(again.trials)
    assert all(np.array_equal(a, b) for a, b in zip(first.spike_times, again.spike_times))
    assert not np.array_equal(first.spike_times[0], other.spike_times[0])
    # the test recording has the same neurons but its own trials
    assert np.array_equal(first.weights, first_test.weights)
    assert np.array_equal(first.heldout, first_test.heldout)
    assert len(first_test.trials) == 10


@pytest.mark.parametrize("kwargs", [{"dataset": "mc_mazes"}, {"dataset": "mc_maze", "n_trials": 19},
                                    {"dataset": "mc_rtt", "n_heldout": 0}])
def test_bad_arguments_are_refused(kwargs, tmp_path):
    with pytest.raises(ValueError):
        write_nlb_files(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
