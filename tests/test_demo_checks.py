"""The demo's checks can fail: every arm is judged against α = 0 per pole (coherence, beyond prompting), length is
judged below the cap, and planted faults make the right check fail — on hand-made summaries and on real sweeps of
a tiny model (a noise adapter breaks coherence; a forced persona word is a leak measured exactly)."""

import json

import pytest
from adapter_helpers import make_adapter, write_steering
from wsteer.eval.sweep import SweepConfig, run_sweep

from wsteer.generation import SamplingConfig
from wsteer.leak import VocabularyFilter
from wsteer.pipeline.demo import DemoChecks, acceptance_checks
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

NOISE_SCALE = 2.0  # lora_B scale of the planted noise adapter: at 1.0 SmolLM2 measured ppl ×3.1 (+1), ×1.7 (−1)
CHECKS = [
    "trait rises with α",
    "+ pole beyond prompting",
    "− pole beyond prompting",
    "+ pole coherent",
    "− pole coherent",
    "answers end before the cap",
    "length stays flat",
    "no persona echo",
]


def arm(alpha, plr, ppl=3.0, d2=0.95, tokens=50.0, truncated=0.1, echo=0.0, kind="adapter", persona=None):
    metrics = {
        "plr": {"mean": plr},
        "perplexity": {"mean": ppl},
        "distinct_2": {"mean": d2},
        "tokens": {"mean": tokens},
        "truncated": {"mean": truncated},
        "echo": {"mean": echo},
    }
    return {"kind": kind, "alpha": alpha, "persona": persona, "length_ratio": tokens / 50.0, "metrics": metrics}


def clean_summary(arm_changes: dict[float, dict] | None = None) -> dict:
    """A clean steer: trait monotone in α and past both prompts at ±1, coherent, flat and uncapped."""
    arms = {a: arm(a, 0.02 * a) for a in (-2.0, -1.0, 0.0, 1.0, 2.0)}
    for alpha, changes in (arm_changes or {}).items():
        arms[alpha] = arm(alpha, **{"plr": 0.02 * alpha, **changes})
    prompts = [arm(None, 0.008, kind="prompt", persona="pos"), arm(None, -0.004, kind="prompt", persona="neg")]
    dose = {"spearman_arm_means": {"rho": 1.0}, "spearman": {"rho": 0.8}}
    return {"dose_response": dose, "arms": [*arms.values(), *prompts]}


def failed(summary: dict, checks: DemoChecks | None = None) -> list[str]:
    results = acceptance_checks(summary, checks or DemoChecks())
    assert [c["check"] for c in results] == CHECKS
    return [c["check"] for c in results if not c["passed"]]


def test_a_clean_steer_passes_every_check():
    assert failed(clean_summary()) == []


def test_a_broken_negative_pole_fails_only_its_coherence_check():
    broken = clean_summary({-1.0: {"ppl": 3.0 * 1.63, "d2": 0.81}})
    assert failed(broken) == ["− pole coherent"]
    loops = clean_summary({-1.0: {"d2": 0.85}})  # perplexity fine, but the answers repeat themselves
    assert failed(loops) == ["− pole coherent"]
    # Beyond |α| = max_alpha the poles are not judged: a broken α = -2 passes, as documented.
    assert failed(clean_summary({-2.0: {"ppl": 9.0}})) == []
    assert failed(clean_summary({-2.0: {"ppl": 9.0}}), DemoChecks(max_alpha=2.0)) == ["− pole coherent"]


def test_the_coherence_check_shows_every_arm_of_the_pole_also_after_one_failed():
    summary = clean_summary({-0.5: {"d2": 0.88}, -1.0: {"d2": 0.90, "ppl": 3.3}})
    check = next(c for c in acceptance_checks(summary, DemoChecks()) if c["check"] == "− pole coherent")
    assert not check["passed"]
    assert check["value"] == "α=-0.5: ppl ×1.00, distinct-2 -0.070, α=-1: ppl ×1.10, distinct-2 -0.050"


def test_prompting_that_moves_the_trait_further_fails_the_pole():
    summary = clean_summary()
    next(a for a in summary["arms"] if a.get("persona") == "pos")["metrics"]["plr"]["mean"] = 0.05
    assert failed(summary) == ["+ pole beyond prompting"]


def test_with_a_probe_each_pole_must_beat_its_prompt_on_it_too():
    summary = clean_summary()
    for a in summary["arms"]:
        a["metrics"]["probe"] = {"mean": (a["alpha"] or 0.0) * 0.5}
    summary["arms"][-2]["metrics"]["probe"]["mean"] = 0.3  # pos prompt: +0.3 < +0.5 at α = +1
    summary["arms"][-1]["metrics"]["probe"]["mean"] = -0.7  # neg prompt: −0.7 < −0.5 at α = −1: beats the adapter
    results = acceptance_checks(summary, DemoChecks())
    names = [c["check"] for c in results]
    assert names == [*CHECKS[:3], "+ pole beyond prompting (probe)", "− pole beyond prompting (probe)", *CHECKS[3:]]
    assert [c["check"] for c in results if not c["passed"]] == ["− pole beyond prompting (probe)"]


def test_length_is_judged_below_the_cap_and_refused_when_most_answers_are_capped():
    capped = clean_summary({a: {"truncated": 0.9} for a in (-1.0, 0.0, 1.0)})
    assert failed(capped) == ["answers end before the cap", "length stays flat"]  # ratios look flat: refused
    some = clean_summary({1.0: {"truncated": 0.3}})
    assert failed(some) == ["answers end before the cap"]
    longer = clean_summary({1.0: {"tokens": 60.0}})
    assert failed(longer) == ["length stays flat"]


def test_missing_measurements_fail_rather_than_pass():
    summary = clean_summary()
    for a in summary["arms"]:
        a["metrics"].pop("perplexity")
    assert failed(summary) == ["+ pole coherent", "− pole coherent"]


# ------------------------------------------------------------------------------------- real sweeps, tiny model
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("checks") / "base", seed=3)


def sweep_summary(tmp_path, base_dir, scale: float, **changes) -> dict:
    from wsteer.adapters.loading import load_steerable

    from wsteer.models import load_model

    make_adapter(load_model(str(base_dir)), tmp_path / "adapter", seed=4, scale=scale)
    write_steering(tmp_path / "adapter", base_dir)
    model, tokenizer = load_steerable(tmp_path / "adapter")
    settings = dict(
        adapter=str(tmp_path / "adapter"),
        alphas=[-1.0, 0.0, 1.0],
        prompts=PromptSource(split="heldout", limit=4),
        sampling=SamplingConfig(max_new_tokens=12, temperature=0.0),
        leak_check_prompts=0,
        out_dir=str(tmp_path / "sweep"),
        batch_size=8,
    )
    result = run_sweep(SweepConfig(**{**settings, **changes}), model, tokenizer)
    return json.loads((result.out_dir / "summary.json").read_text())


@pytest.mark.slow
def test_a_planted_noise_adapter_fails_the_coherence_checks_a_tiny_delta_passes(tmp_path):
    """On the real SmolLM2 (a random tiny model has no coherence to lose): random LoRA noise at α = ±1 breaks
    both poles' coherence checks, while the same adapter shrunk to a tiny delta passes them."""
    from wsteer.models import resolve_model_path

    base = resolve_model_path("smollm2-135m")
    greedy = SamplingConfig(max_new_tokens=32, temperature=0.0)
    coherence = ["+ pole coherent", "− pole coherent"]
    settings = dict(sampling=greedy, baselines=[])  # coherence needs no prompt baselines
    noise = acceptance_checks(sweep_summary(tmp_path / "noise", base, scale=NOISE_SCALE, **settings), DemoChecks())
    quiet = acceptance_checks(sweep_summary(tmp_path / "quiet", base, scale=1e-4, **settings), DemoChecks())
    assert [c["passed"] for c in noise if c["check"] in coherence] == [False, False], noise
    assert [c["passed"] for c in quiet if c["check"] in coherence] == [True, True], quiet


def test_a_planted_leak_is_measured_exactly_and_the_ban_filter_blocks_it(tmp_path, tiny_base):
    """Force the persona word into every answer (a logit bias on the output layer): the unfiltered leak check
    measures exactly 1.0, while the banned-vocabulary answers that are scored leak exactly 0."""
    from wsteer.adapters.loading import load_steerable

    from wsteer.models import load_model

    make_adapter(load_model(str(tiny_base)), tmp_path / "adapter", seed=4)
    write_steering(tmp_path / "adapter", tiny_base)
    model, tokenizer = load_steerable(tmp_path / "adapter")
    (token,) = tokenizer.encode(" honest", add_special_tokens=False)

    def force_persona_word(module, inputs, output):  # output: [batch, seq, vocab] logits
        output[..., token] += 30.0  # dominates a tiny model's logits; finite perplexities
        return output

    model.get_output_embeddings().register_forward_hook(force_persona_word)
    cfg = SweepConfig(
        adapter=str(tmp_path / "adapter"),
        alphas=[-1.0, 0.0, 1.0],
        prompts=PromptSource(split="heldout", limit=4),
        sampling=SamplingConfig(max_new_tokens=6, temperature=0.0),
        vocabulary=VocabularyFilter(mode="ban"),
        leak_check_prompts=4,
        out_dir=str(tmp_path / "sweep"),
        batch_size=8,
    )
    summary = json.loads((run_sweep(cfg, model, tokenizer).out_dir / "summary.json").read_text())
    assert summary["leak"]["n_unfiltered"] > 0
    assert summary["leak"]["unfiltered_rate"] == 1.0
    assert summary["leak"]["filtered_rate"] == 0.0


def test_rho_of_one_swap_among_five_arms_meets_a_target_of_0_9():
    """scipy gives 0.8999999999999998 for one swapped pair of five arm means: that is ρ = 0.9 and passes 0.9; a
    second swap (0.8) still fails."""
    from scipy.stats import spearmanr

    one_swap = float(spearmanr([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])[0])
    assert one_swap < 0.9  # the rounding the check must absorb
    summary = clean_summary()
    summary["dose_response"]["spearman_arm_means"]["rho"] = one_swap
    assert "trait rises with α" not in failed(summary)
    summary["dose_response"]["spearman_arm_means"]["rho"] = float(spearmanr([1, 2, 3, 4, 5], [2, 1, 3, 5, 4])[0])
    assert "trait rises with α" in failed(summary)
