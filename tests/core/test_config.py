from dataclasses import dataclass
from typing import Literal

import pytest

from wsteer.config import config_reference, config_to_dict, load_config, option
from wsteer.errors import ConfigError
from wsteer.manifest import save_config


@dataclass
class Inner:
    rank: int = option(8, "LoRA rank.")
    targets: list[str] = option(help="Modules.", factory=lambda: ["q_proj"])


@dataclass
class Outer:
    learning_rate: float = option(1e-4, "Learning rate.")
    objective: Literal["dpo", "bidirectional"] = option("dpo", "Objective.")
    name: str | None = option(None, "Optional name.")
    lora: Inner = option(help="LoRA settings.", factory=Inner)
    use_kl: bool = option(False, "KL term.")


def write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_loads_yaml_nested_and_overrides(tmp_path):
    path = write(tmp_path, "learning_rate: 1e-3\nlora:\n  rank: 4\n")
    cfg = load_config(Outer, path, ["lora.targets=[v_proj, o_proj]", "objective=bidirectional"])
    assert cfg.learning_rate == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string; it must still be a float
    assert cfg.lora.rank == 4 and cfg.lora.targets == ["v_proj", "o_proj"]
    assert cfg.objective == "bidirectional"


def test_unknown_key_names_key_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, "learning_rate: 0.1\nlora:\n  rank: 4\n  rnak: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    message = str(err.value)
    assert "'lora.rnak'" in message and f"{path}:4" in message and "'lora.rank'" in message


def test_unknown_override_names_the_override():
    with pytest.raises(ConfigError) as err:
        load_config(Outer, None, ["learnig_rate=3"])
    assert "override 'learnig_rate=3'" in str(err.value) and "'learning_rate'" in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("learning_rate: fast\n", "learning_rate must be a number"),
        ("use_kl: 1\n", "use_kl must be true or false"),
        ("objective: dop\n", "did you mean 'dpo'"),
        ("lora:\n  rank: 2.5\n", "lora.rank must be an integer"),
        ("lora: 3\n", "lora must be"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("learning_rate: [1\n", "invalid YAML"),
        ("learning_rate: .nan\n", "finite number"),
    ],
)
def test_bad_values_are_reported_with_location(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_required_key(tmp_path):
    @dataclass
    class Needs:
        data: str = option(help="Required data path.")

    with pytest.raises(ConfigError, match="missing required key"):
        load_config(Needs, write(tmp_path, "{}\n"))


def test_round_trip_and_reference(tmp_path):
    cfg = load_config(Outer, None, ["lora.rank=16"])
    path = save_config(cfg, tmp_path / "out.yaml", header="resolved")
    assert path.read_text().startswith("# resolved\n")
    assert load_config(Outer, path) == cfg
    assert config_to_dict(cfg)["lora"]["rank"] == 16
    keys = [row[0] for row in config_reference(Outer)]
    assert "lora.rank" in keys and all(row[3] for row in config_reference(Outer))


def test_option_requires_help():
    with pytest.raises(TypeError):
        option(1)


@dataclass
class Parent:
    lora: Inner = option(help="LoRA settings with a parent default.", factory=lambda: Inner(rank=4))
    other: Outer = option(help="Collapsed section.", factory=lambda: Outer(lora=Inner(targets=["v_proj"])))


def test_config_reference_takes_nested_defaults_from_the_parent_and_collapses_stop_classes():
    rows = {row[0]: row for row in config_reference(Parent, stop=(Outer,))}
    assert rows["lora.rank"][2] == "4"  # the parent's factory, not Inner's class default 8
    assert rows["other"][1] == "Outer" and rows["other"][2] == "lora.targets=['v_proj']"
    assert not any(key.startswith("other.") for key in rows)


def test_parse_finite_number_names_the_value_and_where():
    from wsteer.config import parse_finite_number
    from wsteer.errors import WsteerError

    assert parse_finite_number("-0.5", "weight", "x:-0.5", "write x:-0.5") == -0.5
    with pytest.raises(WsteerError, match="weight 'big' is not a number") as bad:
        parse_finite_number("big", "weight", "x:big", "write x:-0.5")
    assert bad.value.where == "x:big" and bad.value.fix == "write x:-0.5"
    with pytest.raises(WsteerError, match="α 'inf' is not finite"):
        parse_finite_number("inf", "α", "a", "write adapter:x@1.5")
