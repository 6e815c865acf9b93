"""The α sweep on a tiny model: one batched pass equals each α alone, the cache makes reruns free, outputs."""

import json

import pytest
import torch
from adapter_helpers import make_adapter, write_steering
from wsteer.adapters.steer import steer
from wsteer.eval.sweep import SweepConfig, run_sweep

from wsteer.chat import build_messages
from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
from wsteer.io import write_jsonl
from wsteer.leak import VocabularyFilter
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    """(model with adapter, tokenizer, adapter dir, base dir) on a saved tiny base."""
    from wsteer.adapters.loading import load_steerable

    from wsteer.models import load_model

    root = tmp_path_factory.mktemp("sweep")
    base_dir = save_tiny_model(root / "base", seed=3)
    make_adapter(load_model(str(base_dir)), root / "adapter", seed=4, scale=40.0)
    write_steering(root / "adapter", base_dir)
    model, tokenizer = load_steerable(root / "adapter")
    return model, tokenizer, root / "adapter", base_dir


def config(tmp_path, adapter, **changes):
    settings = dict(
        adapter=str(adapter),
        alphas=ALPHAS,
        prompts=PromptSource(split="heldout", limit=3),
        sampling=SamplingConfig(max_new_tokens=8, temperature=0.0),
        leak_check_prompts=1,
        out_dir=str(tmp_path / "sweep"),
        batch_size=8,
    )
    settings.update(changes)
    return SweepConfig(**settings)


def test_batched_per_row_alphas_equal_each_alpha_alone(steered, tmp_path):
    model, tokenizer, adapter, _ = steered
    cfg = config(tmp_path, adapter, baselines=[], vocabulary=VocabularyFilter(mode="off"))
    result = run_sweep(cfg, model, tokenizer)
    rows = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
    backend = HFBackend(model, tokenizer, batch_size=8)
    greedy = SamplingConfig(max_new_tokens=8, temperature=0.0)
    texts_by_alpha = {}
    for alpha in ALPHAS:
        mine = [r for r in rows if r["alpha"] == alpha]
        with steer(model, None, alpha):
            alone = backend.generate([GenerationRequest(build_messages(r["prompt"])) for r in mine], greedy)
        assert [r["text"] for r in mine] == [g.text for g in alone], alpha
        texts_by_alpha[alpha] = [r["text"] for r in mine]
    assert len(set(map(tuple, texts_by_alpha.values()))) > 1, "the adapter must change some answers"


def test_sweep_outputs_and_cache(steered, tmp_path):
    model, tokenizer, adapter, _ = steered
    pairs = tmp_path / "heldout.jsonl"
    write_jsonl(
        pairs,
        [
            {
                "id": f"h{i}",
                "prompt": f"Question {i}?",
                "cho": "Yes, that is true.",
                "rej": "No way.",
                "pos": "honest",
                "neg": "dishonest",
                "template": "Pretend you're a {persona} person.",
            }
            for i in range(3)
        ],
    )
    # sampled (seeded): a random tiny model's greedy answers are runs of newlines, i.e. empty texts
    cfg = config(
        tmp_path,
        adapter,
        heldout_pairs=str(pairs),
        sampling=SamplingConfig(max_new_tokens=8, temperature=1.0, top_p=1.0),
    )
    first = run_sweep(cfg, model, tokenizer)
    out = first.out_dir
    for name in ("generations.jsonl", "summary.json", "report.md", "report.html", "config.yaml", "manifest.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    names = [a["name"] for a in summary["arms"]]
    assert names == ["α=-2", "α=-1", "α=+0", "α=+1", "α=+2", "prompt:pos", "prompt:neg", "prompt:none"]
    for arm in summary["arms"]:
        for metric in ("plr", "tokens", "refusal", "hedging", "perplexity", "kl", "echo", "margin"):
            stats = arm["metrics"][metric]
            assert stats["lo"] <= stats["mean"] <= stats["hi"], (arm["name"], metric)
    by_name = {a["name"]: a for a in summary["arms"]}
    assert by_name["α=+0"]["metrics"]["kl"]["mean"] == pytest.approx(0.0, abs=1e-6)  # α=0 is the base
    assert by_name["prompt:none"]["metrics"]["plr"] == by_name["α=+0"]["metrics"]["plr"]  # same generations
    assert by_name["α=+2"]["metrics"]["kl"]["mean"] > 0
    assert summary["leak"]["n_unfiltered"] == 6  # 1 prompt x (4 non-zero α + pos + neg)
    assert summary["heldout_pairs"] == 3
    assert set(summary["dose_response"]) >= {"spearman", "spearman_arm_means", "slopes", "flags"}
    assert first.generated > 0
    before = (out / "generations.jsonl").read_bytes()
    again = run_sweep(cfg, model, tokenizer)
    assert again.generated == 0 and (out / "generations.jsonl").read_bytes() == before


def test_unfiltered_rows_only_for_leak_check(steered, tmp_path):
    model, tokenizer, adapter, _ = steered
    cfg = config(tmp_path, adapter, alphas=[0.0, 1.0], baselines=["pos"], kl=False)
    result = run_sweep(cfg, model, tokenizer)
    rows = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
    unfiltered = [r for r in rows if not r["filtered"]]
    assert {(r["arm"], r["prompt_id"]) for r in unfiltered} == {
        ("α=+1", rows[0]["prompt_id"]),
        ("prompt:pos", rows[0]["prompt_id"]),
    }
    assert all(r["leak"] == 0 for r in rows if r["filtered"])


def test_cli_errors_are_one_line(cli, tmp_path):
    result = cli("eval", "sweep", str(tmp_path / "nope"))
    assert result.code == 2 and result.err.count("\n") == 1 and "not found" in result.err
    result = cli("eval", "sweep", "alphas=[1, .nan]")
    assert result.code == 2 and "finite" in result.err


def test_batched_alphas_keep_the_adapter_intact(steered):
    model, _, _, _ = steered
    from wsteer.lora import lora_layers

    scalings = [dict(layer.scaling) for _, layer in lora_layers(model)]
    assert all(v != 0 for s in scalings for v in s.values())
    assert not any(layer._forward_hooks for _, layer in lora_layers(model))
    assert torch.is_grad_enabled()


def test_kl_pass_perplexity_equals_the_reference_perplexity_and_kl_is_zero_at_alpha_zero(steered):
    from wsteer.eval.scoring import kl_and_perplexity

    from wsteer.lora import per_row_adapter_scale
    from wsteer.scoring import perplexity

    model, tokenizer, _, _ = steered
    prompts = ["Say hi.", "Name a colour.", "Count to three."]
    texts = ["Hi there, friend.", "Blue, like the sea.", ""]
    scales = [1.5, 0.0, -1.0]
    scores = kl_and_perplexity(
        model,
        lambda a, b: per_row_adapter_scale(model, scales[a:b]),
        model,
        tokenizer,
        [build_messages(p) for p in prompts],
        prompts,
        texts,
        batch_size=2,
    )
    with steer(model, None, 0.0):
        reference = perplexity(model, tokenizer, prompts, texts, batch_size=2)
    assert [s["perplexity"] for s in scores[:2]] == pytest.approx(reference[:2], rel=1e-5)
    assert scores[0]["kl"] > 1e-4 and scores[1]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert all(v != v for v in scores[2].values())  # empty text: NaN


def test_rows_scored_shortest_first_get_the_scores_each_row_gets_alone(steered, tmp_path):
    """The sweep scores each coefficient's rows shortest first (batches pad to similar lengths); every row keeps
    its own α through the reordering, so its record equals the row scored by itself, unbatched."""
    from wsteer.eval.scoring import length_sorted, score_answers
    from wsteer.eval.sweep import _score_missing

    from wsteer.io import JsonlAppendLog
    from wsteer.lora import per_row_adapter_scale

    model, tokenizer, adapter, _ = steered
    cfg = config(tmp_path, adapter, batch_size=2)
    pair = {"pos": "honest", "neg": "dishonest", "template": "Pretend you're a {persona} person."}
    texts = ["A long answer that goes on, and on, and on for a while.", "Yes, short.", "A medium answer, longer."]
    texts.append("Ok.")
    rows = [
        {
            "key": f"k{i}",
            "scale": scale,
            "filtered": True,
            "prompt": f"Question {i}?",
            "messages": build_messages(f"Question {i}?"),
            "text": text,
            "tokens": len(tokenizer(text)["input_ids"]),
        }
        for i, (text, scale) in enumerate(zip(texts, [1.5, -1.0, 0.0, 2.0]))
    ]
    assert [r["key"] for r in length_sorted(rows)] == ["k3", "k1", "k2", "k0"]  # the order batches are formed in
    with JsonlAppendLog(tmp_path / "scores.jsonl") as log:
        _score_missing(model, tokenizer, cfg, rows, pair, [], log)
        scored = {r["key"]: r for r in log.records}

    def alone(row, scale):
        context = lambda a, b: per_row_adapter_scale(model, [scale])  # noqa: E731
        return score_answers(model, context, model, tokenizer, [row], pair, [], batch_size=1)[0]

    for row in rows:
        reference = alone(row, row["scale"])
        for metric in ("plr", "perplexity", "kl"):
            assert scored[row["key"]][metric] == pytest.approx(reference[metric], rel=1e-4, abs=1e-6), metric
    # planted fault: a row scored at another row's α (what a reorder that left the scales behind would do)
    wrong = alone(rows[0], rows[1]["scale"])
    assert scored["k0"]["kl"] != pytest.approx(wrong["kl"], rel=1e-3)
