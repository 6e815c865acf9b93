"""`wsteer eval capability` on a tiny model and a tiny local lm-eval task: per-α scores, α = 0 is the base model's
own lm-eval score, steering changes them, and the sweep report gets them beside the trait."""

import contextlib
import json

import lm_eval  # noqa: F401  (the test extra installs it: missing fails, never skips)
import pytest
from adapter_helpers import make_adapter, write_steering
from wsteer.eval.capability import CapabilityConfig, run_capability
from wsteer.eval.report import capability_rows
from wsteer.eval.sweep import SweepConfig, run_sweep

from wsteer.errors import ConfigError
from wsteer.generation import SamplingConfig
from wsteer.leak import VocabularyFilter
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

ALPHAS = [-2.0, 0.0, 2.0]
ROWS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "answer": 0},
    {"question": "How many legs does a cat have?", "choices": ["two", "four", "six"], "answer": 1},
    {"question": "Which one is a fruit?", "choices": ["carrot", "potato", "apple"], "answer": 2},
    {"question": "What is two plus two?", "choices": ["four", "five", "three"], "answer": 0},
    {"question": "Which animal barks?", "choices": ["cat", "dog", "fish"], "answer": 1},
]
TASK_YAML = """task: wsteer_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {rows}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: brier_score
    aggregation: brier_score
    higher_is_better: false
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(adapter dir, base dir, local task folder): a tiny base, a random adapter that moves it, one MC task."""
    from wsteer.models import load_model

    root = tmp_path_factory.mktemp("capability")
    base_dir = save_tiny_model(root / "base", seed=3)
    make_adapter(load_model(str(base_dir)), root / "adapter", seed=4, scale=40.0)
    write_steering(root / "adapter", base_dir)
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tasks / "tiny_mc.yaml").write_text(TASK_YAML.format(rows=tasks / "rows.jsonl"))
    return root / "adapter", base_dir, tasks


def capability_config(setup, out_dir, **changes):
    adapter, _, tasks = setup
    settings = dict(
        adapter=str(adapter),
        alphas=ALPHAS,
        tasks=["wsteer_tiny_mc"],
        include_path=str(tasks),
        batch_size=4,
        out_dir=str(out_dir),
    )
    return CapabilityConfig(**{**settings, **changes})


def scores(summary: dict, metric: str) -> dict[float, float]:
    return {r["alpha"]: r["value"] for r in summary["rows"] if r["metric"] == metric}


def base_model_brier(base_dir, tasks) -> float:
    """The reference path: lm-eval on the plain base model, no adapter anywhere."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from wsteer.models import load_model, load_tokenizer

    lm = HFLM(pretrained=load_model(str(base_dir)), tokenizer=load_tokenizer(str(base_dir)), batch_size=4)
    results = simple_evaluate(
        model=lm, tasks=["wsteer_tiny_mc"], task_manager=TaskManager(include_path=str(tasks)), log_samples=False
    )
    return results["results"]["wsteer_tiny_mc"]["brier_score,none"]


def test_capability_per_alpha_goes_into_the_sweep_report(setup, tmp_path):
    adapter, base_dir, tasks = setup
    out_dir = tmp_path / "sweep"
    sweep = SweepConfig(
        adapter=str(adapter),
        alphas=ALPHAS,
        baselines=[],
        prompts=PromptSource(split="heldout", limit=2),
        sampling=SamplingConfig(max_new_tokens=4, temperature=0.0),
        vocabulary=VocabularyFilter(mode="off"),
        leak_check_prompts=0,
        kl=False,
        batch_size=8,
        out_dir=str(out_dir),
    )
    run_sweep(sweep)
    assert "Capability per α" not in (out_dir / "report.md").read_text()
    result = run_capability(capability_config(setup, out_dir))

    summary = json.loads((out_dir / "capability.json").read_text())
    brier = scores(summary, "brier_score")
    assert sorted(brier) == ALPHAS and sorted(scores(summary, "acc")) == ALPHAS
    assert all(r["n"] == len(ROWS) for r in summary["rows"])
    assert brier[0.0] == pytest.approx(base_model_brier(base_dir, tasks), abs=1e-9)  # α = 0 is the base model
    assert brier[-2.0] != pytest.approx(brier[0.0]) and brier[2.0] != pytest.approx(brier[0.0])  # steering acts

    report = (out_dir / "report.md").read_text()
    assert result.report == out_dir / "report.html"
    section = report[report.index("## Capability per α") :]
    header, rows = capability_rows(summary, json.loads((out_dir / "summary.json").read_text()))
    assert header[:2] == ["α", "trait (PLR)"] and "wsteer_tiny_mc: brier_score" in header
    for alpha, row in zip(ALPHAS, rows):
        assert row[0] == f"{alpha:+g}"
        assert f"{brier[alpha]:.3g}" in row[header.index("wsteer_tiny_mc: brier_score")]
        assert "| " + " | ".join(row) + " |" in section  # the per-α row, trait beside the scores
    assert "Capability per α" in (out_dir / "report.html").read_text()
    assert "capability vs alpha" in (out_dir / "report.html").read_text()
    # A rerun of the sweep keeps the capability section (capability.json sits beside summary.json).
    run_sweep(sweep)
    assert "## Capability per α" in (out_dir / "report.md").read_text()


def test_without_steering_every_alpha_scores_the_same(setup, tmp_path, monkeypatch):
    """The planted fault for the check above: if α were not applied, the scores could not differ."""
    import wsteer.adapters.steer as steer_module

    monkeypatch.setattr(steer_module, "steer", lambda model, adapter, alpha: contextlib.nullcontext(model))
    result = run_capability(capability_config(setup, tmp_path / "alone"))
    brier = scores(result.summary, "brier_score")
    assert len(set(brier.values())) == 1
    assert result.report == tmp_path / "alone" / "capability.md"  # no sweep there: the table on its own
    text = result.report.read_text()
    assert "| -2 |" in text and "| +0 |" in text and "| +2 |" in text


def test_unknown_task_is_a_config_error(setup, tmp_path):
    with pytest.raises(ConfigError, match=r"lm-eval has no task 'wsteer_tiny_mcq'.*wsteer_tiny_mc"):
        run_capability(capability_config(setup, tmp_path, tasks=["wsteer_tiny_mcq"]))


def test_cli_verb(setup, tmp_path, cli):
    adapter, _, tasks = setup
    result = cli(
        "eval",
        "capability",
        adapter,
        "tasks=[wsteer_tiny_mc]",
        f"include_path={tasks}",
        "alphas=[0,1]",
        f"out_dir={tmp_path / 'cap'}",
        "limit=2",
    )
    assert result.code == 0, result
    assert "capability: 1 task(s) at 2 α values" in result.out
    rows = json.loads((tmp_path / "cap" / "capability.json").read_text())["rows"]
    assert {r["n"] for r in rows} == {2}
