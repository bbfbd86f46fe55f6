"""Recipes: YAML errors, --set overrides and option validation with file + key path."""

from typing import Literal

import pytest

from seqpipe.config import ConfigError, apply_override, load_config, validate_options
from seqpipe.registry import Registry, unknown_name_message
from seqpipe.types import PositiveInt, Probability


class Toy:
    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 8,
        dropout: Probability = 0.0,
        cell: Literal["lstm", "gru"] = "lstm",
        bidirectional: bool = False,
        scale: float = 1.0,
    ):
        pass


def write(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


def validate(options):
    return validate_options(
        Toy, options, where="model", source="configs/x.yaml", wired=frozenset({"input_size"})
    )


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  name: lstm\n  hidden_size: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line \d+: invalid YAML"):
        load_config(path)


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_unknown_section_lists_expected(tmp_path):
    with pytest.raises(
        ConfigError, match=r"x.yaml: modle: unknown section \(expected one of: .*model"
    ):
        load_config(write(tmp_path, "modle: {name: lstm}\n"))


def test_component_section_needs_a_name(tmp_path):
    with pytest.raises(ConfigError, match="model: expected a mapping with a 'name' key"):
        load_config(write(tmp_path, "model: {hidden_size: 3}\n"))


def test_shorthand_and_overrides_keep_types(tmp_path):
    config = load_config(
        write(tmp_path, "model: lstm\ntrain: {lr: 0.1}\n"),
        [
            "model.hidden_size=128",
            "train.lr=3e-4",
            "train.betas=[0.9, 0.98]",
            "model.bidirectional=true",
        ],
    )
    assert config["model"] == {"name": "lstm", "hidden_size": 128, "bidirectional": True}
    assert config["train"]["lr"] == pytest.approx(3e-4)
    assert config["train"]["betas"] == [0.9, 0.98]


def test_override_errors():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_override({}, "model.hidden_size")
    with pytest.raises(ConfigError, match="'model' is not a section"):
        apply_override({"model": "lstm"}, "model.hidden_size=3")


def test_wrong_type_says_what_was_expected():
    with pytest.raises(ConfigError) as err:
        validate({"hidden_size": "big"})
    assert (
        str(err.value)
        == "configs/x.yaml: model.hidden_size: expected a positive integer, got 'big'"
    )
    with pytest.raises(ConfigError, match="model.hidden_size: expected a positive integer, got -3"):
        validate({"hidden_size": -3})
    with pytest.raises(
        ConfigError, match=r"model.dropout: expected a number between 0 and 1, got 1.5"
    ):
        validate({"dropout": 1.5})
    with pytest.raises(ConfigError, match=r"model.cell: expected one of 'lstm', 'gru', got 'lsmt'"):
        validate({"cell": "lsmt"})


def test_unknown_and_wired_options_are_rejected():
    with pytest.raises(
        ConfigError, match=r"model.hiden_size: unknown option \(expected one of: hidden_size"
    ):
        validate({"hiden_size": 3})
    with pytest.raises(ConfigError, match="model.input_size: set automatically by the pipeline"):
        validate({"input_size": 3})


def test_valid_options_are_converted():
    assert validate({"hidden_size": 16, "scale": 2}) == {
        "hidden_size": 16,
        "dropout": 0.0,
        "cell": "lstm",
        "bidirectional": False,
        "scale": 2.0,
    }


def test_unknown_name_suggests_close_match():
    registry = Registry()
    for name in ("rnn", "lstm", "gru"):
        registry.add("model", name, object, plugin="seqpipe.models", package="seqpipe")
    with pytest.raises(Exception) as err:
        registry.get("model", "lstmm")
    assert (
        str(err.value) == "unknown model 'lstmm' (did you mean 'lstm'? installed: gru, lstm, rnn)"
    )
    assert "did you mean" not in unknown_name_message("model", "transformer", ["gru", "lstm"])


def test_yaml_scalars_follow_yaml_1_2():
    # YAML 1.1 would read 3e-4 as a string and `no` as False (the "Norway problem").
    from seqpipe.config import parse_yaml

    assert parse_yaml("lr: 3e-4\nlabels: [yes, no, on]\nflag: true") == {
        "lr": 3e-4,
        "labels": ["yes", "no", "on"],
        "flag": True,
    }
