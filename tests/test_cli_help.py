"""One CLI style: every verb takes ``--config FILE`` and ``key=value``, its ``--help`` lists the keys with their
defaults and help, the config reference covers every verb, and ``wsteer --version`` prints the version."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata

import pytest

import wsteer
from wsteer.cli import build_parser
from wsteer.pipeline.reference import sections

# A few keys per verb as --help must show them: "key (type) = default" (or "key (type, required)"), with help.
EXPECTED = {
    "pairs lint": ["file (str | None) = None", "ids (list[str]) = []", "json (bool) = False", "second_opinion ("],
    "pairs generate": ["pair.pos (str | None) = 'honest'", "pair.neg (str | None) = 'dishonest'"],
    "pairs curate": ["input (str | None) = None", "empty.min_words (int) = 1"],
    "templates screen": ["model.name (str) = 'smollm2-135m'"],
    "train": ["output_dir (str) = 'runs/train/adapter'", "objective (one of 'dpo', 'bidirectional', "],
    "adapters steer": [
        "alphas (list[float]) = [-1.0, 0.0, 1.0]",
        "prompts (list[str]) = []",
        "sampling.max_new_tokens (int) = 64",
        "sampling.temperature (float) = 0.0",
        "Print JSON lines instead of text.",
    ],
    "adapters merge": [
        "alpha (float | str, required)",
        "out (str, required)",
        "overwrite (bool) = False",
    ],
    "adapters export": ["alpha (float | str) = 'calibrated'", "out (str, required)"],
    "adapters push": ["repo_id (str, required)", "private (bool) = False", "base_id (str | None) = None"],
    "adapters card": ["sweep (str | None) = None", "repo_id (str | None) = None"],
    "adapters combine": ["parts (list[str]) = []", "allow_unverified_base (bool) = False"],
    "adapters calibrate": ["target_kl (float) = 1.0", "quantile (float) = 0.95"],
    "adapters inspect": ["adapter (str | None) = None", "json (bool) = False"],
    "eval sweep": ["adapter (str | None) = None", "dtype (one of 'float32', 'bfloat16', 'float16', 'auto')"],
    "eval ab": ["a (str) = 'adapter:runs/demo/adapter@1.0'", "b (str) = 'base'"],
    "demo": ["seed (int) = 0", "train (TrainConfig) = class defaults", "checks.min_spearman (float) = 0.9"],
}


def leaf_verbs(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """``{"adapters merge": parser, …}`` for every runnable verb (argparse keeps subparsers in its actions)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        return {" ".join(prefix): parser}
    found = {}
    for name, child in groups[0].choices.items():
        found |= leaf_verbs(child, (*prefix, name))
    return found


VERBS = leaf_verbs(build_parser())


def help_text(capsys, verb: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*verb.split(), "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_the_verb_walk_finds_every_verb():
    assert len(VERBS) >= len(EXPECTED) and set(EXPECTED) <= set(VERBS), sorted(VERBS)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_takes_a_config_and_lists_its_keys_in_help(capsys, verb):
    config_class = VERBS[verb].get_default("config_class")
    assert dataclasses.is_dataclass(config_class), f"`wsteer {verb}` does not load a config dataclass"
    out = help_text(capsys, verb)
    assert "--config FILE" in out and f"config keys ({config_class.__name__}" in out
    for field in dataclasses.fields(config_class):  # every top-level key, with its own help
        assert f"\n  {field.name} (" in out, (verb, field.name)
        assert " ".join(field.metadata["help"].split()[:3]) in " ".join(out.split()), (verb, field.name)
    for fragment in EXPECTED.get(verb, []):
        assert fragment in out, (verb, fragment)


def test_the_config_reference_covers_every_verb():
    documented = {verb.removeprefix("wsteer "): cls for verb, cls, _ in sections()}
    assert documented == {verb: p.get_default("config_class") for verb, p in VERBS.items()}


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"wsteer {wsteer.__version__}\n"
    assert wsteer.__version__ == importlib.metadata.version("wsteer")
