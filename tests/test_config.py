"""Configs: the defaults are the article's network; bad keys and types are named."""

import pytest

from bigcppn.config import (ACTIVATIONS, Config, NetworkConfig, config_from_dict, config_to_dict, dump_toml,
                            load_config, parse_override)
from bigcppn.errors import ConfigError


def test_defaults_are_the_article_network():
    cfg = load_config()
    n = cfg.network
    assert n.inputs == ("x", "y")
    assert n.hidden == (16,) * 8
    assert n.activations == ("tanh",) * 8
    assert n.output_activation == "sigmoid"
    assert (n.weight_init, n.weight_scale, n.bias_init, n.bias_scale) == ("normal", 1.0, "normal", 1.0)
    assert cfg.view.center == (0.0, 0.0) and cfg.view.zoom == 1.0


def test_toml_file_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('seed = 7\n[network]\nhidden = [32, 32]\nactivation = ["sin", "gauss"]\n[view]\nzoom = 2\n')
    cfg = load_config(p, ["network.color=hsv", "canvas.width=100", "view.center=[0.25, -1]"])
    assert cfg.seed == 7
    assert cfg.network.hidden == (32, 32)
    assert cfg.network.activations == ("sin", "gauss")
    assert cfg.network.color == "hsv"
    assert cfg.canvas.width == 100
    assert cfg.view.zoom == 2.0 and isinstance(cfg.view.zoom, float)
    assert cfg.view.center == (0.25, -1.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["network.depth=3"], "unknown config key 'network.depth'"),
        (["colour=rgb"], "unknown config key 'colour'"),
        (["network.hidden=16"], "network.hidden must be a list of integers"),
        (["network.hidden=[16, 'a']"], "network.hidden[1] must be an integer"),
        (["canvas.width=1.5"], "canvas.width must be an integer"),
        (["canvas.width=true"], "canvas.width must be an integer"),
        (["network.bias=1"], "network.bias must be true or false or a string"),
        (["network.bias=last"], "network.bias must be true, false or \"first\""),
        (["network.activation=swish"], "unknown activation 'swish'"),
        (["network.activation=['tanh']"], "lists 1 activations for 8 hidden layers"),
        (["network.inputs=['x', 'w']"], "unknown input 'w'"),
        (["network.color=cmyk"], "network.color 'cmyk' is unknown"),
        (["view.zoom=0"], "view.zoom must be a positive number"),
        (["canvas.width=0"], "canvas.width must be between"),
        (["canvas.bleed=-1"], "canvas.bleed must be >= 0 pixels"),
        (["render.device=tpu"], "render.device 'tpu' is unknown"),
        (["output.depth=12"], "output.depth must be 8 or 16"),
        (["output.compression=zstd"], "output.compression 'zstd' is unknown"),
        (["network=3"], "network must be a table"),
        (["novalue"], "--set expects KEY=VALUE"),
        (["network.hidden.x=3"], "network.hidden must be a list of integers"),
        (["seed=1", "seed.x=3"], "'seed' is not a table"),
    ],
)
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[network\nhidden = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_override_values_parse_as_toml_or_string():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=1.5") == (["a"], 1.5)
    assert parse_override("network.color=grey") == (["network", "color"], "grey")
    assert parse_override("x='quoted'") == (["x"], "quoted")


def test_dump_round_trips(tmp_path):
    cfg = load_config(None, ["network.hidden=[8, 4]", "network.activation=['sin', 'relu']", "seed=99",
                             "network.inputs=['x','y','r','z']", "network.z=[0.5, -0.25]", "network.z_size=2"])
    p = tmp_path / "dump.toml"
    p.write_text(dump_toml(cfg))
    assert load_config(p) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_configs_are_frozen():
    cfg = Config()
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]
    assert set(ACTIVATIONS) >= {"tanh", "sigmoid", "sin", "gauss", "relu", "softplus", "abs", "identity"}
    assert NetworkConfig(hidden=()).activations == ()
