"""A/B runs on a tiny model, and the pairwise judge against a fake OpenAI-compatible server."""

import json
import math
import re

import pytest
from adapter_helpers import make_adapter, write_steering
from fake_llm import FakeChatServer
from wsteer.eval.ab import ABConfig, paired_table, parse_arm, run_ab
from wsteer.eval.judge import JudgeConfig, combine_orders, judge_pairs, parse_judgement, summarize_verdicts

from wsteer.errors import WsteerError
from wsteer.generation import SamplingConfig
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

SECRET = "sk-judge-DO-NOT-LEAK-77"
KEY_ENV = "WSTEER_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    from wsteer.models import load_model

    root = tmp_path_factory.mktemp("ab")
    base_dir = save_tiny_model(root / "base", seed=3)
    make_adapter(load_model(str(base_dir)), root / "adapter", seed=4, scale=40.0)
    write_steering(root / "adapter", base_dir)
    return root / "adapter"


def config(tmp_path, a, b, **changes):
    settings = dict(
        a=a,
        b=b,
        prompts=PromptSource(split="heldout", limit=3),
        out_dir=str(tmp_path / "ab"),
        sampling=SamplingConfig(max_new_tokens=8, temperature=1.0, top_p=1.0),
        batch_size=8,
    )
    settings.update(changes)
    return ABConfig(**settings)


def test_parse_arm_forms_and_errors(adapter_dir):
    assert parse_arm(f"adapter:{adapter_dir}@-1.5", "a").alpha == -1.5
    assert parse_arm(f"adapter:{adapter_dir}", "a").alpha == 1.0
    assert parse_arm("prompt:neg", "b").persona == "neg" and parse_arm("base", "b").kind == "base"
    for bad, fragment in (
        ("prompt:maybe", "cannot read arm"),
        (f"adapter:{adapter_dir}@nan", "finite"),
        (f"adapter:{adapter_dir}@big", "not a number"),
        ("merged:/no/such", "not found"),
    ):
        with pytest.raises(WsteerError, match=fragment):
            parse_arm(bad, "a")


def test_identical_arms_have_zero_paired_differences(adapter_dir, tmp_path):
    result, report = run_ab(config(tmp_path, f"adapter:{adapter_dir}@0", "prompt:none"))
    for metric, row in result["paired"].items():
        if row["n"]:
            assert row["mean"] == pytest.approx(0.0, abs=1e-6) and row["wins"] == row["losses"] == 0, metric
    assert report.read_text().startswith("# A/B:")


def test_adapter_vs_base_paired_table_matches_rows(adapter_dir, tmp_path):
    cfg = config(tmp_path, f"adapter:{adapter_dir}@2", "base")
    result, _ = run_ab(cfg)
    rows = [json.loads(line) for line in (tmp_path / "ab" / "generations.jsonl").read_text().splitlines()]
    a = [r for r in rows if r["arm"] == cfg.a]
    b = [r for r in rows if r["arm"] == "base"]
    assert [r["seed"] for r in a] == [r["seed"] for r in b]  # identical prompts and seeds
    diffs = [x["kl"] - y["kl"] for x, y in zip(a, b)]
    assert result["paired"]["kl"]["mean"] == pytest.approx(sum(diffs) / len(diffs))
    assert result["paired"]["kl"]["mean_b"] == pytest.approx(0.0, abs=1e-6) and result["paired"]["kl"]["mean"] > 0
    assert (tmp_path / "ab" / "manifest.json").is_file()


def test_merged_checkpoint_arm_equals_runtime_steering(adapter_dir, tmp_path):
    from wsteer.adapters.merge import merge_adapter

    merged = tmp_path / "merged"
    merge_adapter(adapter_dir, 1.5, merged)
    result, _ = run_ab(config(tmp_path, f"merged:{merged}", f"adapter:{adapter_dir}@1.5", kl=False))
    rows = [json.loads(line) for line in (tmp_path / "ab" / "generations.jsonl").read_text().splitlines()]
    half = len(rows) // 2
    assert [r["text"] for r in rows[:half]] == [r["text"] for r in rows[half:]]
    assert result["paired"]["plr"]["mean"] == pytest.approx(0.0, abs=1e-4)


def test_paired_table_sign_test():
    a = [{"plr": 1.0 + i} for i in range(10)]
    b = [{"plr": float(i)} for i in range(10)]
    table = paired_table(a, b)
    assert table["plr"]["mean"] == pytest.approx(1.0) and table["plr"]["wins"] == 10
    assert table["plr"]["sign_p"] < 0.01 and math.isnan(table["kl"]["mean"])


# --------------------------------------------------------------------------------------------- judge
def content_judge(body: dict) -> str:
    """Prefers the response that says 'truth'; says the second response is longer; always parseable."""
    text = body["messages"][-1]["content"]
    one = re.search(r"RESPONSE 1:\n(.*?)\n\nRESPONSE 2:", text, re.S).group(1)
    winner = "1" if "truth" in one else "2"
    return json.dumps(
        {
            "trait": winner,
            "longer": "2",
            "refuses": "tie",
            "hedges": "tie",
            "more_formal": "tie",
            "incoherent": "tie",
            "reason": "says the truth",
        }
    )


def position_biased_judge(body: dict) -> str:
    return '{"trait": "1", "longer": "1", "refuses": "tie", "hedges": "tie", "more_formal": "tie", "incoherent": "tie"}'


def judge_config(url: str) -> JudgeConfig:
    return JudgeConfig(enabled=True, base_url=url, model="fake", api_key_env=KEY_ENV)


def test_judge_swaps_positions_and_keeps_only_consistent_verdicts(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    prompts, a, b = ["q1", "q2"], ["I tell the truth.", "Tell the truth."], ["I lie.", "Lie."]
    with FakeChatServer(content_judge) as server:
        verdicts = judge_pairs(prompts, a, b, "honest", "dishonest", judge_config(server.url))
    assert len(server.requests) == 4 and all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)
    assert [v["trait"] for v in verdicts] == ["A", "A"] and all(v["trait_consistent"] for v in verdicts)
    assert [v["longer"] for v in verdicts] == ["tie", "tie"]  # "2" in both orders = position bias, not content
    summary = summarize_verdicts(verdicts)
    assert summary["trait"]["A"] == 2 and summary["longer"]["inconsistent"] == 2
    with FakeChatServer(position_biased_judge) as server:
        biased = judge_pairs(prompts, a, b, "honest", "dishonest", judge_config(server.url))
    assert summarize_verdicts(biased)["trait"] == {"A": 0, "B": 0, "tie": 2, "inconsistent": 2, "sign_p": 1.0}


def test_parse_and_combine():
    assert parse_judgement("noise")["trait"] == "tie"
    parsed = parse_judgement('Sure: {"trait": "2", "longer": "x"}')
    assert parsed["trait"] == "2" and parsed["longer"] == "tie"
    combined = combine_orders({**parsed, "trait": "1"}, {**parsed, "trait": "2"})
    assert combined["trait"] == "A" and combined["trait_consistent"]


def test_ab_with_judge_never_writes_the_key(adapter_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeChatServer(content_judge, echo_key=True) as server:
        cfg = config(tmp_path, f"adapter:{adapter_dir}@1", "base", kl=False, judge=judge_config(server.url))
        result, _ = run_ab(cfg)
    assert (
        result["judge"]["summary"]["trait"]["tie"]
        + result["judge"]["summary"]["trait"]["A"]
        + result["judge"]["summary"]["trait"]["B"]
        == 3
    )
    for path in (tmp_path / "ab").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
