"""The arm/sampling section SweepConfig and ABConfig share: one declaration, both YAML files still load."""

import dataclasses
from types import SimpleNamespace

import pytest
from wsteer.eval.ab import ABConfig
from wsteer.eval.arms import ArmSettings
from wsteer.eval.sweep import SweepConfig

from wsteer.config import load_config
from wsteer.errors import ConfigError, WsteerError
from wsteer.resources import shipped_path

INFO = SimpleNamespace(pos="honest", neg="dishonest", template="Pretend you're a {persona} person.")


def test_shared_fields_are_declared_once_and_inherited_by_both_commands():
    shared = {f.name: f for f in dataclasses.fields(ArmSettings)}
    assert {"base", "dtype", "pos", "neg", "template", "prompts", "sampling", "vocabulary", "kl"} <= set(shared)
    for cls in (SweepConfig, ABConfig):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in set(shared) - {"out_dir"}:  # each command keeps its own output directory default
            assert fields[name] is shared[name] or fields[name].metadata == shared[name].metadata, (cls, name)
    assert SweepConfig().out_dir == "runs/sweep" and ABConfig().out_dir == "runs/ab"
    with pytest.raises(ValueError, match="samples_per_prompt"):
        ABConfig(samples_per_prompt=0)  # the shared check runs for A/B too


@pytest.mark.parametrize(("cls", "path"), [(SweepConfig, "configs/sweep.yaml"), (ABConfig, "configs/ab.yaml")])
def test_shipped_yaml_files_still_load(cls, path):
    cfg = load_config(cls, shipped_path(path))
    assert cfg.sampling.max_new_tokens == 64 and cfg.vocabulary.mode == "ban" and cfg.kl is True
    with pytest.raises(ConfigError, match="unknown key 'alphas' in ABConfig"):
        load_config(ABConfig, shipped_path("configs/ab.yaml"), ["alphas=[1.0]"])  # sweep-only keys stay sweep-only


def test_resolve_pair_prefers_the_config_then_steering_json_and_names_what_is_missing():
    assert SweepConfig(pos="brave").resolve_pair(INFO, "adapter", "x") == {**vars(INFO), "pos": "brave"}
    assert ABConfig().resolve_pair(INFO, "ab", "x")["neg"] == "dishonest"
    with pytest.raises(WsteerError) as missing:
        ABConfig(neg="cowardly").resolve_pair(None, "ab", "no steering.json among the arms names them")
    assert "need pos, template, and no steering.json among the arms names them" in str(missing.value)
    assert "pos=… template=… on the command line" in str(missing.value) and missing.value.where == "ab"
    with pytest.raises(WsteerError):
        SweepConfig(template="no slot here").resolve_pair(INFO, "adapter", "x")
