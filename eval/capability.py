"""``wsteer eval capability``: what steering costs the model, per α, on lm-eval-harness tasks.

After "did the trait move?" comes "what did it cost?". This runs lm-evaluation-harness tasks (``lm-eval``; e.g.
``tinyMMLU``, ``arc_easy``, or local task YAMLs) on the steered model at each α: one ``lm_eval`` ``HFLM`` wraps the
loaded peft model, and :func:`wsteer.adapters.steer.steer` sets α around each evaluation, so α = 0 is exactly the
base model and every α scores the same documents with the same seeds.

Outputs in ``out_dir`` (by default the sweep's, ``runs/sweep``): ``capability.json`` (per α, task and metric: value,
stderr, n) and ``capability.md``; when the sweep's ``summary.json`` is there too, its ``report.md`` /
``report.html`` are rewritten with a capability section beside the trait. The run record goes to
``out_dir/capability.run/``.

Offline: hub tasks need their datasets in the local Hugging Face cache; local tasks (``include_path``: a folder of
task YAMLs whose ``dataset_path: json`` reads a local JSON/JSONL file) need nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wsteer.eval.report import CAPABILITY_FILE, refresh_report, render_capability_markdown

from wsteer.config import option
from wsteer.errors import ConfigError, WsteerError
from wsteer.io import atomic_write_text, read_json, write_json

STAGE = "eval.capability"


@dataclass
class CapabilityConfig:
    """lm-eval-harness tasks on the steered model at each α."""

    adapter: str | None = option(None, "Adapter directory (from `wsteer train`); or pass it as ADAPTER.")
    base: str | None = option(None, "Base model; default: the one the adapter records (checked against its hash).")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = option("float32", "Base model dtype.")
    alphas: list[float] = option(help="Steering coefficients (0 = base).", factory=lambda: [-2.0, -1.0, 0.0, 1.0, 2.0])
    tasks: list[str] = option(
        help="lm-eval task (or group) names, e.g. [tinyMMLU] or [arc_easy, hellaswag]; local ones from include_path.",
        factory=lambda: ["tinyMMLU"],
    )
    include_path: str | None = option(
        None, "Folder of extra lm-eval task YAMLs (lm_eval.tasks.TaskManager include_path), e.g. local tasks."
    )
    num_fewshot: int | None = option(None, "Few-shot examples per question (None: each task's default).")
    limit: int | float | None = option(
        None, "At most this many documents per task (a float < 1: that fraction); None: all. For quick checks."
    )
    apply_chat_template: bool = option(
        False, "Format each question with the model's chat template (lm-eval `apply_chat_template`)."
    )
    batch_size: int = option(8, "Requests per forward pass (lm-eval HFLM batch_size).")
    bootstrap_iters: int = option(1000, "Bootstrap resamples for the stderr of metrics without a closed form.")
    seed: int = option(0, "lm-eval's random, numpy, torch and few-shot seeds.")
    out_dir: str = option(
        "runs/sweep",
        "Output directory; put it where the sweep wrote summary.json to get the capability section in its report.",
    )

    def __post_init__(self) -> None:
        if not self.alphas:
            raise ValueError("alphas must not be empty")
        if any(not math.isfinite(a) for a in self.alphas):
            raise ValueError(f"alphas must be finite numbers, got {self.alphas}")
        if not self.tasks:
            raise ValueError("tasks must name at least one lm-eval task")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class CapabilityResult:
    """Where a capability run wrote its outputs."""

    out_dir: Path
    summary: dict
    report: Path
    seconds: float


def require_lm_eval() -> None:
    """Fail with an install hint when lm-eval is missing (it is the ``capability`` extra)."""
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        raise WsteerError(
            "wsteer eval capability needs lm-evaluation-harness, which is not installed",
            where="eval capability",
            fix="pip install 'wsteer[capability]' (or pip install lm-eval)",
        )


def task_manager(cfg: CapabilityConfig):
    """lm-eval's TaskManager with ``include_path``; unknown task names are a ConfigError listing close ones."""
    import difflib

    from lm_eval.tasks import TaskManager

    if cfg.include_path and not Path(cfg.include_path).is_dir():
        raise ConfigError(
            f"include_path {cfg.include_path} is not a directory",
            where="include_path",
            fix="point it at a folder of lm-eval task YAMLs",
        )
    manager = TaskManager(include_path=cfg.include_path)
    known = set(manager.all_tasks)
    for task in cfg.tasks:
        if task not in known:
            close = difflib.get_close_matches(task, sorted(known), n=3)
            raise ConfigError(
                f"lm-eval has no task {task!r}" + (f"; close: {', '.join(close)}" if close else ""),
                where="tasks",
                fix="check `lm-eval ls tasks`, or add a task YAML folder with include_path",
            )
    return manager


def score_rows(alpha: float, results: dict) -> list[dict]:
    """One row per (task, metric) of an lm-eval result: value, stderr (None when lm-eval has none), n documents."""
    rows = []
    groups = set(results.get("groups", {}))
    for task, entries in results["results"].items():
        n = (results.get("n-samples", {}).get(task) or {}).get("effective")
        better = results.get("higher_is_better", {}).get(task, {})
        for key, value in entries.items():
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            stderr = entries.get(f"{metric}_stderr,{filter_name}")
            rows.append(
                {
                    "alpha": alpha,
                    "task": task,
                    "metric": metric if filter_name == "none" else f"{metric} ({filter_name})",
                    "value": float(value),
                    "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                    "n": n,
                    "higher_is_better": better.get(metric),
                    "group": task in groups,
                }
            )
    return rows


def evaluate_alphas(model, tokenizer, cfg: CapabilityConfig, manager) -> list[dict]:
    """Run the tasks once per α on ``model`` (a peft model) steered with :func:`wsteer.adapters.steer.steer`."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from wsteer.adapters.steer import steer

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)
    rows: list[dict] = []
    for alpha in sorted(dict.fromkeys(cfg.alphas)):
        with steer(model, None, alpha):
            results = simple_evaluate(
                model=lm,
                tasks=list(cfg.tasks),
                task_manager=manager,
                num_fewshot=cfg.num_fewshot,
                limit=cfg.limit,
                apply_chat_template=cfg.apply_chat_template,
                bootstrap_iters=cfg.bootstrap_iters,
                log_samples=False,
                random_seed=cfg.seed,
                numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed,
                fewshot_random_seed=cfg.seed,
            )
        rows += score_rows(alpha, results)
    return rows


def build_summary(cfg: CapabilityConfig, rows: list[dict], model_name: str | None) -> dict:
    """``capability.json``: the run's settings and one row per (α, task, metric)."""
    return {
        "stage": STAGE,
        "adapter": str(cfg.adapter),
        "model": model_name,
        "alphas": sorted(dict.fromkeys(cfg.alphas)),
        "tasks": list(cfg.tasks),
        "num_fewshot": cfg.num_fewshot,
        "limit": cfg.limit,
        "apply_chat_template": cfg.apply_chat_template,
        "rows": rows,
    }


def run_capability(cfg: CapabilityConfig, model=None, tokenizer=None) -> CapabilityResult:
    """Score the adapter's capability cost at every α, write capability.json/.md, and add a capability section
    to the sweep report in ``out_dir`` when there is one. ``model``/``tokenizer``: an already loaded peft model."""
    from wsteer.adapters.loading import load_steerable, open_adapter

    from wsteer.manifest import write_run_record

    if not cfg.adapter:
        raise WsteerError("no adapter given", where="adapter", fix="pass ADAPTER or set adapter: in the config")
    require_lm_eval()
    started = time.time()
    info = open_adapter(cfg.adapter).info  # fails early on a missing or broken adapter
    manager = task_manager(cfg)
    if model is None:
        model, tokenizer = load_steerable(cfg.adapter, cfg.base, dtype=cfg.dtype)
    rows = evaluate_alphas(model, tokenizer, cfg, manager)
    out_dir = Path(cfg.out_dir)
    summary = build_summary(cfg, rows, info.base_model if info else cfg.base)
    write_json(out_dir / CAPABILITY_FILE, summary)
    sweep = read_json(out_dir / "summary.json") if (out_dir / "summary.json").is_file() else None
    atomic_write_text(out_dir / "capability.md", render_capability_markdown(summary, sweep))
    report = refresh_report(out_dir) if sweep is not None else out_dir / "capability.md"
    write_run_record(
        out_dir / "capability.run",
        STAGE,
        cfg,
        seeds={"seed": cfg.seed},
        inputs={"adapter": Path(cfg.adapter), **({"include_path": Path(cfg.include_path)} if cfg.include_path else {})},
        extra={"rows": len(rows)},
        launch=f"wsteer eval capability {cfg.adapter}",
    )
    return CapabilityResult(out_dir, summary, report, round(time.time() - started, 1))
