"""The activation-steering arm on a tiny model: built from the pairs with steering-vectors, applied at ±c, calibrated
to the adapter's KL budget, and in the sweep summary and report beside the adapter and prompt arms."""

import json
import math

import pytest

# steering-vectors is part of the test install (README command (b)): a missing package fails here, never skips.
import steering_vectors  # noqa: F401
import torch
from adapter_helpers import make_adapter, write_steering
from wsteer.adapters.calibrate import DEFAULT_PROMPTS, CalibrateConfig, measure, search_alphas
from wsteer.eval.sweep import SweepConfig, run_sweep
from wsteer.eval.vector import VectorArms, VectorSteering, build_vector_steering, pair_texts, train_vector

from wsteer.chat import build_messages, encode_prompt
from wsteer.generation import SamplingConfig
from wsteer.io import write_jsonl
from wsteer.leak import VocabularyFilter
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

PROMPTS = ["Why is the sky blue?", "Give me one tip for a job interview.", "Describe a rainy afternoon."]


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    """(model with adapter, tokenizer, adapter dir, pairs file) on a saved 4-block tiny base."""
    from wsteer.adapters.loading import load_steerable

    from wsteer.models import load_model

    root = tmp_path_factory.mktemp("vector")
    base_dir = save_tiny_model(root / "base", seed=3, num_hidden_layers=4)
    make_adapter(load_model(str(base_dir)), root / "adapter", seed=4, scale=40.0)
    write_steering(root / "adapter", base_dir)
    model, tokenizer = load_steerable(root / "adapter")
    pairs = root / "pairs.jsonl"
    write_jsonl(
        pairs,
        [
            {"id": f"p{i}", "prompt": p, "cho": f"I will tell you the truth about it, {i}.", "rej": f"Lies {i}!"}
            for i, p in enumerate(PROMPTS * 2)
        ],
    )
    return model, tokenizer, root / "adapter", pairs


def logits(model, tokenizer, context):
    ids = torch.tensor([encode_prompt(tokenizer, build_messages("Tell me about the moon."))])
    with torch.inference_mode(), context:
        return model(input_ids=ids).logits  # [1, T, V]


def test_vector_is_the_mean_difference_at_the_middle_block(steered):
    model, tokenizer, _, pairs = steered
    steering, info = build_vector_steering(model, tokenizer, VectorArms(pairs=str(pairs)), None)
    assert info == {"layer": 2, "rule": "middle", "n_layers": 4} and steering.layer == 2
    # By hand: the base model's residual stream after block 2 at the last token of each text, cho minus rej.
    from wsteer.io import read_jsonl

    records = read_jsonl(pairs)
    texts = pair_texts(tokenizer, records)
    base = model.get_base_model()
    with torch.inference_mode(), model.disable_adapter():

        def last_hidden(text):
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            return base(input_ids=ids, output_hidden_states=True).hidden_states[3][0, -1]  # [d] after block 2

        expected = torch.stack([last_hidden(c) - last_hidden(r) for c, r in texts]).mean(0)  # [d]
    torch.testing.assert_close(steering.vector.layer_activations[2], expected, rtol=1e-4, atol=1e-5)


def test_coefficient_zero_is_the_base_and_nonzero_changes_from_the_chosen_block(steered):
    model, tokenizer, _, pairs = steered
    steering, _ = build_vector_steering(model, tokenizer, VectorArms(pairs=str(pairs), layer=1), None)
    from wsteer.eval.scoring import base_context

    base = logits(model, tokenizer, base_context(model))
    assert torch.equal(logits(model, tokenizer, steering.at(0.0)), base)
    plus, minus = logits(model, tokenizer, steering.at(4.0)), logits(model, tokenizer, steering.at(-4.0))
    assert (plus - base).abs().max() > 1e-3 and (minus - base).abs().max() > 1e-3
    assert not torch.allclose(plus, minus)
    # The hook sits on block 1: block 0's output is untouched, block 1's moves by exactly c · v at every position.
    ids = torch.tensor([encode_prompt(tokenizer, build_messages("Tell me about the moon."))])
    with torch.inference_mode(), base_context(model):
        clean = model(input_ids=ids, output_hidden_states=True).hidden_states
    with torch.inference_mode(), steering.at(4.0):
        moved = model(input_ids=ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(moved[1], clean[1])
    torch.testing.assert_close(moved[2] - clean[2], (4.0 * steering.vector.layer_activations[1]).expand_as(clean[2]))
    # The adapter is off under the vector: the logits at c = 0 do not depend on the adapter scale.
    assert torch.equal(logits(model, tokenizer, steering.at(0.0)), base)


def test_a_batch_cannot_mix_coefficients(steered):
    model, tokenizer, _, _ = steered
    steering = VectorSteering(model, train_vector(model, tokenizer, [{"prompt": "a", "cho": "b", "rej": "c"}], [1]), 1)
    with pytest.raises(ValueError, match="one coefficient"):
        steering([1.0, 2.0])


def test_calibrated_coefficients_reach_the_kl_target(steered):
    model, tokenizer, _, pairs = steered
    steering, _ = build_vector_steering(model, tokenizer, VectorArms(pairs=str(pairs)), None)
    cfg = CalibrateConfig(prompts=PROMPTS, max_new_tokens=6, target_kl=0.005, rel_tol=0.01, batch_size=4)
    result = search_alphas(model, tokenizer, PROMPTS, cfg, progress=False, steering=steering)
    assert result.alpha_plus > 0 > result.alpha_minus
    for c in (result.alpha_plus, result.alpha_minus):
        # measured afresh, the calibrated c reaches the target within tolerance ...
        kl = measure(model, tokenizer, PROMPTS, [c], 6, batch_size=4, steering=steering)[c].kl_quantile
        assert abs(kl / 0.005 - 1) < 0.05, (c, kl)
        # ... and the same coefficient as an *adapter* α measures something else: the vector was steered.
        assert measure(model, tokenizer, PROMPTS, [c], 6, batch_size=4)[c].kl_quantile != pytest.approx(kl)
    assert measure(model, tokenizer, PROMPTS, [0.0], 6, steering=steering)[0.0].kl_quantile == 0.0


def sweep_config(tmp_path, adapter, pairs, **changes):
    settings = dict(
        adapter=str(adapter),
        alphas=[-1.0, 0.0, 1.0],
        baselines=["pos", "neg"],
        prompts=PromptSource(split="heldout", limit=2),
        sampling=SamplingConfig(max_new_tokens=6, temperature=0.0),
        vocabulary=VocabularyFilter(mode="off"),
        out_dir=str(tmp_path / "sweep"),
        batch_size=4,
        vector=VectorArms(pairs=str(pairs), target_kl=0.005, calibration_prompts=3, calibration_tokens=4, rel_tol=0.05),
        probes="honesty",
    )
    settings.update(changes)
    return SweepConfig(**settings)


def test_sweep_has_vector_arms_at_equal_kl_with_the_same_metrics_and_the_report_table(steered, tmp_path):
    model, tokenizer, adapter, pairs = steered
    result = run_sweep(sweep_config(tmp_path, adapter, pairs), model, tokenizer)
    summary = json.loads((result.out_dir / "summary.json").read_text())
    settings = summary["vector"]["equal_kl"]
    assert summary["vector"]["layer"] == 2 and settings["target_kl"] == 0.005
    for key in ("kl_alpha_plus", "kl_alpha_minus", "kl_c_plus", "kl_c_minus"):
        assert abs(settings[key] / 0.005 - 1) < 0.05, (key, settings[key])
    arms = {a["name"]: a for a in summary["arms"]}
    vector_arms = [a for a in summary["arms"] if a["kind"] == "vector"]
    assert sorted(a["coefficient"] for a in vector_arms) == sorted([settings["c_minus"], settings["c_plus"]])
    assert {a["alpha"] for a in summary["arms"] if a["kind"] == "adapter"} >= {settings["alpha_plus"], 0.0}
    adapter_metrics = set(arms["α=+1"]["metrics"])
    for arm in vector_arms:
        assert set(arm["metrics"]) == adapter_metrics >= {"plr", "kl", "perplexity", "probe", "hedging"}
        assert arm["metrics"]["kl"]["mean"] > 0  # steered: its answers are scored under the vector
    both = [a for a in summary["arms"] if {"plr", "probe"} <= set(a["metrics"])]  # tiny models write empty answers
    assert summary["probe"]["items"] == 40 and summary["probe"]["spearman_vs_trait"]["n"] == len(both) >= 4
    # Vector rows were generated under the vector: they differ from the base's answers.
    rows = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
    base_texts = [r["text"] for r in rows if r["arm"] == "α=+0"]
    assert any([r["text"] for r in rows if r["arm"] == a["name"]] != base_texts for a in vector_arms)
    report = (result.out_dir / "report.md").read_text()
    assert "## Adapter, vector and prompt at equal KL" in report
    table = report.split("## Adapter, vector and prompt at equal KL")[1]
    for name in (f"α={settings['alpha_plus']:+g}", f"vector:c={settings['c_plus']:+g}", "prompt:pos", "prompt:neg"):
        assert f"| {name} |" in table, name
    assert (
        "Spearman ρ over arm means" in report
        and "<h2>Adapter, vector and prompt at equal KL</h2>" in (result.out_dir / "report.html").read_text()
    )
    # A rerun regenerates nothing: vector rows are cached under the vector's hash and coefficient.
    again = run_sweep(sweep_config(tmp_path, adapter, pairs), model, tokenizer)
    assert again.generated == 0


def test_matched_vector_reaches_the_kl_the_adapter_has_at_each_swept_pole(steered, tmp_path):
    model, tokenizer, adapter, pairs = steered
    vector = VectorArms(pairs=str(pairs), match_alpha=0.01, calibration_prompts=3, calibration_tokens=4, rel_tol=0.02)
    cfg = sweep_config(tmp_path, adapter, pairs, vector=vector, alphas=[-0.01, 0.0, 0.01])
    result = run_sweep(cfg, model, tokenizer)
    summary = json.loads((result.out_dir / "summary.json").read_text())
    settings = summary["vector"]["equal_kl"]
    assert (settings["alpha_plus"], settings["alpha_minus"], settings["match_alpha"]) == (0.01, -0.01, 0.01)
    # The budget on each side is the adapter's own KL at ±0.01, measured afresh; the two sides differ, so one shared
    # target would have matched at most one of them.
    prompts = list(DEFAULT_PROMPTS[:3])
    adapter_kl = measure(model, tokenizer, prompts, [0.01, -0.01], 4, batch_size=4)
    assert settings["kl_alpha_plus"] == pytest.approx(adapter_kl[0.01].kl_quantile, rel=1e-4)
    assert settings["kl_alpha_minus"] == pytest.approx(adapter_kl[-0.01].kl_quantile, rel=1e-4)
    assert settings["kl_alpha_plus"] != pytest.approx(settings["kl_alpha_minus"], rel=0.05)
    steering, _ = build_vector_steering(model, tokenizer, vector, None)
    for sign in ("plus", "minus"):
        c = settings[f"c_{sign}"]
        kl = measure(model, tokenizer, prompts, [c], 4, batch_size=4, steering=steering)[c].kl_quantile
        assert abs(kl / settings[f"kl_alpha_{sign}"] - 1) < 0.02, (sign, c, kl)
    # No adapter arm was added: the sweep's own ±0.01 are the equal-KL arms.
    assert sorted(a["alpha"] for a in summary["arms"] if a["kind"] == "adapter") == [-0.01, 0.0, 0.01]
    assert (
        "reaches the p95 per-token KL the adapter has at α = 0.01 / -0.01" in (result.out_dir / "report.md").read_text()
    )


def test_match_alpha_must_be_a_swept_alpha(steered, tmp_path):
    _, _, adapter, pairs = steered
    with pytest.raises(ValueError, match=r"match_alpha = 2 needs α = \[2.0, -2.0\]"):
        sweep_config(tmp_path, adapter, pairs, vector=VectorArms(pairs=str(pairs), match_alpha=2.0))


def test_separation_rule_picks_the_best_separating_block(steered, tmp_path):
    model, tokenizer, _, pairs = steered
    steering, info = build_vector_steering(
        model, tokenizer, VectorArms(pairs=str(pairs), layer_rule="separation"), str(pairs)
    )
    scores = {int(k): v for k, v in info["separation"].items()}
    assert set(scores) == {0, 1, 2, 3} and info["rule"] == "separation"
    best = max(scores, key=lambda k: (scores[k]["accuracy"], scores[k]["d"]))
    assert steering.layer == info["layer"] == best and list(steering.vector.layer_activations) == [best]
    assert all(0.0 <= s["accuracy"] <= 1.0 and math.isfinite(s["d"]) for s in scores.values())


def test_the_optional_judge_rates_each_arm_against_the_base(steered, tmp_path, monkeypatch):
    """A fake judge that prefers whichever answer is longer: the per-arm 'judge' metric is its verdict, in [-1, 1],
    from both orders, and the base is not judged against itself."""
    import re

    from fake_llm import FakeChatServer
    from wsteer.eval.judge import JudgeConfig

    def longer_is_more_pos(body):
        text = body["messages"][-1]["content"]
        one, two = re.search(r"RESPONSE 1:\n(.*?)\n\nRESPONSE 2:\n(.*?)\n\nThe trait", text, re.S).groups()
        winner = "1" if len(one) > len(two) else "2" if len(two) > len(one) else "tie"
        return json.dumps({"trait": winner, "longer": winner, "refuses": "tie", "hedges": "tie",
                           "more_formal": "tie", "incoherent": "tie"})  # fmt: skip

    monkeypatch.setenv("WSTEER_TEST_JUDGE_KEY", "sk-test")
    model, tokenizer, adapter, pairs = steered
    with FakeChatServer(longer_is_more_pos) as server:
        judge = JudgeConfig(enabled=True, base_url=server.url, model="fake", api_key_env="WSTEER_TEST_JUDGE_KEY")
        cfg = sweep_config(
            tmp_path,
            adapter,
            pairs,
            judge=judge,
            probes=None,
            vector=VectorArms(pairs=str(pairs), calibrate=False, coefficients=[3.0]),
        )
        result = run_sweep(cfg, model, tokenizer)
    rows = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
    base = {r["prompt_id"]: r["text"] for r in rows if r["arm"] == "α=+0"}
    arms = {a["name"]: a for a in result.summary["arms"]}
    assert "judge" not in arms["α=+0"]["metrics"]
    for name in ("α=+1", "α=-1", "prompt:pos", "vector:c=+3"):
        mine = [r for r in rows if r["arm"] == name]
        expected = [
            (len(r["text"]) > len(base[r["prompt_id"]])) - (len(r["text"]) < len(base[r["prompt_id"]])) for r in mine
        ]
        assert arms[name]["metrics"]["judge"]["mean"] == pytest.approx(sum(expected) / len(expected)), name
    assert (
        result.summary["judge"]["answers"] == 5 * 2
    )  # 5 arms besides the base, 2 prompts and "LLM judge" in (result.out_dir / "report.md").read_text()
