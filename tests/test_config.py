"""Every setting is checked for its JSON type; one line names the setting, value and type."""

import dataclasses
import json

import pytest
from test_cli import assert_one_line_error, run_cli

from pyrolf.config import WHERE, Config, ConfigError, field_types
from pyrolf.names import BOUNDED_BELOW, GUIDE_NAMES, POTENTIAL_NAMES, PRIORS, QUADRATIC

# One value of each JSON type, with the Python types of a field that may take it.
JSON_VALUES = {
    "string": ("2", {str}),
    "whole number": (2, {int, float}),
    "fraction": (2.5, {float}),
    "boolean": (True, {bool}),
    "null": (None, {type(None)}),
    "array": ([2], set()),
    "object": ({"value": 2}, set()),
}
EXPECTED = {str: "a string", int: "a whole number", float: "a finite number", bool: "true or false",
            list: "a list of strings"}


def annotated(name: str) -> set[type]:
    return set(field_types(Config)[name])


# a string or null is one condition or none, as config.json files held them before units_where
WRONG = [(field.name, kind) for field in dataclasses.fields(Config)
         for kind, (_, takers) in JSON_VALUES.items() if not takers & annotated(field.name)
         and not (field.name in WHERE and kind in ("string", "null"))]


def test_every_setting_has_wrong_json_types_to_refuse():
    names = {field.name for field in dataclasses.fields(Config)}
    assert {name for name, _ in WRONG} == names
    for name in names:  # a str, int, float, bool or list (of strings) field, maybe also null
        assert annotated(name) - {type(None)} in ({str}, {int}, {float}, {bool}, {list}), name
        assert sum(1 for wrong, _ in WRONG if wrong == name) >= 4, name


@pytest.mark.parametrize("name, kind", WRONG)
def test_a_setting_of_a_wrong_json_type_is_one_line(name, kind):
    value = JSON_VALUES[kind][0]
    with pytest.raises(ConfigError) as error:
        Config.from_dict(json.loads(json.dumps({name: value})))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"setting {name} must be ")
    assert json.dumps(value) in message
    for allowed in annotated(name) - {type(None)}:
        assert EXPECTED[allowed] in message
    assert ("or null" in message) == (type(None) in annotated(name))


@pytest.mark.parametrize("name, kind", WRONG)
def test_a_config_file_of_a_wrong_json_type_is_one_line(name, kind, tmp_path, monkeypatch, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({name: JSON_VALUES[kind][0]}))
    code, _, err = run_cli(["fit", "--config", settings, "--out", tmp_path / "run", "--quiet"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, f"setting {name} must be ")
    assert not (tmp_path / "run").exists()


def test_every_setting_of_its_own_json_type_round_trips():
    config = Config(data="mc_maze", data_dir="/data", noise_scale=0.5,
                    targets="/data/eval_data_test.h5", learn_dynamics=False)
    text = json.dumps(config.to_dict())
    assert Config.from_dict(json.loads(text)) == config
    assert json.dumps(Config.from_dict(json.loads(text)).to_dict()) == text


def test_whole_floats_are_whole_numbers_and_whole_numbers_are_numbers():
    config = Config.from_dict({"epochs": 3.0, "lr": 1, "noise_scale": 2})
    assert (config.epochs, type(config.epochs)) == (3, int)
    assert (config.lr, type(config.lr)) == (1.0, float)
    assert type(config.noise_scale) is float


@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (float("inf"), "inf"),
                                          (-float("inf"), "-inf")])
def test_nan_and_infinity_are_no_setting(value, shown):
    with pytest.raises(ConfigError, match=f"setting lr must be a finite number, got {shown}$"):
        Config(lr=value)


def test_choices_of_numbers_are_named_in_the_message():
    with pytest.raises(ConfigError, match="bin_size_ms must be one of 5, 20, got 7"):
        Config(data="mc_maze", bin_size_ms=7)


def test_the_names_settings_are_checked_against_are_the_registries():
    """Config and the CLI read pyrolf.names, without torch: it must name every prior, potential
    and guide the registries build, in their order, and say of each potential what its class
    says of being quadratic."""
    from pyrolf.dynamics import DYNAMICS, POTENTIALS
    from pyrolf.guides import GUIDES

    assert (PRIORS, POTENTIAL_NAMES, GUIDE_NAMES) == (tuple(DYNAMICS), tuple(POTENTIALS),
                                                      tuple(GUIDES))
    assert {name: POTENTIALS[name](8, 2).quadratic for name in POTENTIALS} == QUADRATIC
    assert {name: POTENTIALS[name](8, 2).bounded_below for name in POTENTIALS} == BOUNDED_BELOW


@pytest.mark.parametrize("setting, message", [
    ("prior", "prior must be one of langevin, overdamped, got 'brownian'"),
    ("potential", "potential must be one of oscillators, anharmonic, springs, free, got "
                  "'brownian'"),
    ("guide", "guide must be one of langevin, meanfield, got 'brownian'"),
])
def test_a_prior_potential_or_guide_of_no_such_name_is_one_line_before_any_data(setting,
                                                                                message):
    with pytest.raises(ConfigError, match=message) as error:
        Config(**{setting: "brownian"})
    assert "\n" not in str(error.value)


def test_the_integrator_is_a_named_choice_and_the_scan_needs_a_quadratic_potential():
    from pyrolf.models import build_flow

    with pytest.raises(ConfigError, match="integrator must be one of auto, loop, scan, got 'rk4'"):
        Config(integrator="rk4")
    with pytest.raises(ConfigError, match="scan integrator needs a quadratic potential"):
        Config(integrator="scan", potential="anharmonic")
    assert Config(integrator="scan", potential="free").potential == "free"
    assert build_flow(Config(integrator="scan"), 5, 3).prior.dynamics.integrator == "scan"


def test_the_defaults_learn_the_dynamics_and_the_nlb_presets_keep_the_released_codes_fixed():
    """Δ, γ, σ are trained (parameters with gradients) by default; the NLB presets hold the
    released code's fixed values (buffers), which a config entry can still switch on."""
    from pyrolf.models import build_flow, preset

    def trained(config):
        dynamics = build_flow(config, n_neurons=6, n_heldin=4).prior.dynamics
        names = {name for name, p in dynamics.named_parameters() if p.requires_grad}
        return names & {"log_step", "logit_damping", "log_noise_scale"}

    assert trained(Config()) == {"log_step", "logit_damping", "log_noise_scale"}
    nlb = Config(**{**preset("mc_maze"), "data": "mc_maze", "latent_dim": 8, "encoder_hidden": 8})
    assert trained(nlb) == set()
    assert (nlb.step, nlb.damping) == (0.01, 0.55)
    assert preset("dmfc_rsg")["damping"] == 0.7  # (the released code's there)
    assert all(preset(name)["damping"] == 0.55 for name in ("mc_maze", "mc_rtt", "area2_bump"))
    assert trained(dataclasses.replace(nlb, learn_dynamics=True)) == {
        "log_step", "logit_damping", "log_noise_scale"}


@pytest.mark.parametrize("name", ["kl_warmup", "weight_decay"])
def test_a_negative_kl_warmup_or_weight_decay_is_refused(name):
    """(weight_decay's check dropped went unseen: a mutation audit)"""
    with pytest.raises(ConfigError, match="must not be negative"):
        Config(**{name: -1})
    Config(**{name: 0})  # the bound itself is allowed


@pytest.mark.parametrize("damping", [0.0, 1.0, -0.1, 1.5])
def test_damping_at_or_beyond_either_end_of_0_1_is_refused(damping):
    """(A mutation audit: damping = 1 was never refused in a test.)"""
    with pytest.raises(ConfigError, match="damping must lie in"):
        Config(damping=damping)


def test_damping_inside_0_1_is_kept():
    assert Config(damping=0.999).damping == 0.999


def test_a_window_of_no_length_is_refused_and_one_of_some_length_kept():
    assert Config(data="rec.nwb", window="-0.2,0.8").window_seconds() == (-0.2, 0.8)
    for empty in ("0.5,0.5", "0,0", "0.8,-0.2"):
        with pytest.raises(ConfigError, match="START < STOP"):
            Config(data="rec.nwb", window=empty).window_seconds()
