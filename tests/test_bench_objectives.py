"""bench/objectives.py's selection helpers: the prompts outside the demo's selection, and the demo checks an arm
misses with the persona-prompt arms of the first arm's sweep (hand-made summaries; no model)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from test_demo_checks import clean_summary

from bench.objectives import demo_check_misses, prompt_source
from wsteer.prompts import PromptSource, resolve_prompts


def test_outside_limit_sweeps_every_heldout_prompt_the_demo_does_not_read(tmp_path):
    args = SimpleNamespace(outside_limit=16, prompts=16, instruction="Be brief.")
    source = prompt_source(args, tmp_path)
    written = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    demo = {p.id for p in resolve_prompts(PromptSource(split="heldout", limit=16))}
    every = {p.id for p in resolve_prompts(PromptSource(split="heldout"))}
    ids = {row["id"] for row in written}
    assert ids.isdisjoint(demo) and ids | demo == every and len(ids) == len(every) - 16
    swept = resolve_prompts(PromptSource(**source))
    assert {p.id for p in swept} == ids and all(p.prompt.endswith(" Be brief.") for p in swept)
    assert prompt_source(SimpleNamespace(outside_limit=None, prompts=16, instruction=""), tmp_path)["limit"] == 16


def test_an_arm_is_judged_against_the_first_arms_persona_prompts():
    first = clean_summary()
    prompt_arms = [a for a in first["arms"] if a["kind"] == "prompt"]
    later = {**first, "arms": [a for a in first["arms"] if a["kind"] != "prompt"]}  # swept without baselines
    assert demo_check_misses(later, prompt_arms) == []
    # planted: the − pole loops at α = −1 (distinct-2 0.95 → 0.85)
    looping = clean_summary({-1.0: {"d2": 0.85}})
    looping["arms"] = [a for a in looping["arms"] if a["kind"] != "prompt"]
    misses = demo_check_misses(looping, prompt_arms)
    assert len(misses) == 1 and misses[0].startswith("− pole coherent")
    # without the prompt arms the beyond-prompting checks could not pass: they are what makes the arm judgeable
    assert any(m.startswith("+ pole beyond prompting") for m in demo_check_misses(later, []))
