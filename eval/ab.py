"""``wsteer eval ab``: two arms on identical prompts and seeds, compared pair by pair.

An arm is one of
  ``adapter:PATH@ALPHA``  an adapter steered at α (``@ALPHA`` defaults to 1),
  ``merged:PATH``         a merged checkpoint (``wsteer adapters merge``),
  ``base``                the base model, no persona,
  ``prompt:pos|neg|none`` the base model under a persona system prompt (or none).
Both arms answer every (prompt, sample) with the same seed and the same persona-vocabulary filter. Every metric of
the sweep is computed per answer (the base model judges PLR and perplexity; KL is to the base), and each metric's
paired difference A − B gets a bootstrap CI and a sign test. An optional LLM judge compares the answers in both
orders (:mod:`wsteer.eval.judge`).

Outputs in ``out_dir``: ``generations.jsonl``, ``ab.json``, ``ab.md`` and the run record.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wsteer.eval.arms import ArmSettings
from wsteer.eval.judge import JudgeConfig, judge_pairs, summarize_verdicts
from wsteer.eval.metrics import AB_METRICS
from wsteer.eval.scoring import base_context, length_sorted, score_answers

from wsteer.chat import build_messages, fill_template
from wsteer.config import option, parse_finite_number
from wsteer.errors import WsteerError
from wsteer.generation import GenerationRequest, derive_seed
from wsteer.io import atomic_write_text, write_json, write_jsonl
from wsteer.prompts import resolve_prompts
from wsteer.stats import paired_difference
from wsteer.textstats import persona_terms
from wsteer.vllm_engine import make_backend

DEFAULT_CONFIG = "configs/ab.yaml"
STAGE = "eval.ab"
_ARM = re.compile(
    r"^(?:(?P<kind>adapter|merged):(?P<path>.+?)(?:@(?P<alpha>[^@]+))?|(?P<base>base)"
    r"|prompt:(?P<persona>pos|neg|none))$"
)


@dataclass
class ABConfig(ArmSettings):
    """Two arms on the same prompts and seeds."""

    a: str = option(
        "adapter:runs/demo/adapter@1.0", "Arm A: adapter:PATH@ALPHA, merged:PATH, base, or prompt:pos|neg|none."
    )
    b: str = option("base", "Arm B, same forms as A.")
    judge: JudgeConfig = option(help="Optional pairwise LLM judge.", factory=JudgeConfig)
    out_dir: str = option("runs/ab", "Output directory.")


@dataclass
class ArmSpec:
    """One parsed arm."""

    label: str
    kind: Literal["adapter", "merged", "base", "prompt"]
    path: str | None = None
    alpha: float = 1.0
    persona: Literal["pos", "neg", "none"] | None = None


def parse_arm(text: str, where: str) -> ArmSpec:
    """Parse an arm spec (see the module docs); errors name the config key."""
    match = _ARM.match(text.strip())
    if not match:
        raise WsteerError(
            f"cannot read arm {text!r}",
            where=where,
            fix="write adapter:PATH@ALPHA, merged:PATH, base, or prompt:pos|neg|none",
        )
    if match["base"]:
        return ArmSpec(text, "base")
    if match["persona"]:
        return ArmSpec(text, "prompt", persona=match["persona"])
    alpha = 1.0
    if match["alpha"] is not None:
        alpha = parse_finite_number(match["alpha"], "α", where, "write e.g. adapter:runs/x/adapter@1.5")
    if not Path(match["path"]).is_dir():
        raise WsteerError(f"{match['kind']} directory not found: {match['path']}", where=where, fix="check the path")
    return ArmSpec(text, match["kind"], path=match["path"], alpha=alpha)


@dataclass
class _LiveArm:
    spec: ArmSpec
    model: object
    adapter_name: str | None = None

    def context(self):
        """The context this arm generates under."""
        from wsteer.adapters.steer import steer

        if self.spec.kind == "adapter":
            return steer(self.model, self.adapter_name, self.spec.alpha)
        if self.spec.kind == "merged":
            return contextlib.nullcontext()
        return base_context(self.model)


def _steering_info(specs: list[ArmSpec]):
    from wsteer.records import read_steering_info

    for spec in specs:
        if spec.path:
            info = read_steering_info(spec.path)
            if info:
                return info
    return None


def _load_arms(cfg: ABConfig, specs: list[ArmSpec], info):
    """(live arms, base model, tokenizer): adapters share one base model; merged checkpoints load on their own."""
    from wsteer.adapters.loading import attach_adapter

    from wsteer.models import load_model, load_tokenizer, place_model

    base_name = cfg.base or (info.base_model if info else None)
    if not base_name:
        raise WsteerError(
            "no base model: the arms record none",
            where="base",
            fix="set base: to the model the adapters were trained on",
        )
    model_cfg = cfg.placement.model_config(base_name, cfg.dtype, dispatch_later=True)
    model, tokenizer = load_model(model_cfg), load_tokenizer(model_cfg)
    names = {}
    for index, spec in enumerate(specs):
        if spec.kind == "adapter" and spec.path not in names:
            names[spec.path] = f"arm{index}"
            model = attach_adapter(model, spec.path, adapter_name=names[spec.path])
    place_model(model, cfg.placement)  # after the adapters, so their factors follow their layers
    arms = []
    for spec in specs:
        if spec.kind == "merged":
            arms.append(_LiveArm(spec, load_model(cfg.placement.model_config(spec.path, cfg.dtype))))
        else:
            arms.append(_LiveArm(spec, model, names.get(spec.path)))
    return arms, model, tokenizer


def _messages(spec: ArmSpec, prompt: str, pair: dict):
    persona = {"pos": pair["pos"], "neg": pair["neg"]}.get(spec.persona or "none")
    return build_messages(prompt, fill_template(pair["template"], persona) if persona else None)


def _answer(arm: _LiveArm, tokenizer, cfg: ABConfig, rows: list[dict], pair: dict, terms: list[str]) -> list[dict]:
    from wsteer.leak import PersonaVocabularyProcessor

    steering = (arm.spec.path, arm.spec.alpha) if arm.spec.kind == "adapter" else None
    requests = [
        GenerationRequest(_messages(arm.spec, r["prompt"], pair), seed=r["seed"], adapter=steering) for r in rows
    ]
    mode = cfg.vocabulary.mode

    def processors(batch):
        if mode == "off":
            return []
        return [PersonaVocabularyProcessor(tokenizer, [terms] * len(batch), mode=mode, penalty=cfg.vocabulary.penalty)]

    backend = make_backend(cfg.engine, arm.model, tokenizer, cfg.batch_size, cfg.vllm)
    # The hf engine steers through the arm's context; vLLM loads each request's adapter at its α.
    with arm.context() if backend.name == "hf" else contextlib.nullcontext():
        generations = backend.generate(
            requests, cfg.sampling, logits_processors=processors, progress=f"ab: {arm.spec.label}"
        )
    return [
        {**r, "arm": arm.spec.label, "text": g.text, "tokens": len(g.token_ids), "messages": g.request.messages}
        for r, g in zip(rows, generations)
    ]


def _score(
    arm: _LiveArm, base_model, tokenizer, cfg: ABConfig, answers: list[dict], pair: dict, terms: list[str]
) -> None:
    ordered = length_sorted(answers)  # batches of similar length pad less; the dicts are updated in place
    scores = score_answers(
        arm.model, lambda a, b: arm.context(), base_model, tokenizer, ordered, pair, terms, cfg.batch_size, kl=cfg.kl
    )
    for answer, score in zip(ordered, scores):
        answer.update(score)


def paired_table(answers_a: list[dict], answers_b: list[dict], seed: int = 0) -> dict[str, dict]:
    """Per metric: mean of A, mean of B, and the paired difference A − B (bootstrap CI, sign test)."""
    table = {}
    for metric in AB_METRICS:
        a = [x.get(metric, math.nan) for x in answers_a]
        b = [x.get(metric, math.nan) for x in answers_b]
        diff = paired_difference(a, b, seed=seed)
        finite = [
            (x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
        ]
        table[metric] = {
            "mean_a": sum(x for x, _ in finite) / len(finite) if finite else math.nan,
            "mean_b": sum(y for _, y in finite) / len(finite) if finite else math.nan,
            **diff,
        }
    return table


def render_ab_markdown(result: dict) -> str:
    """The A/B report as Markdown."""
    lines = [
        f"# A/B: {result['a']}  vs  {result['b']}",
        "",
        f"Pair: {result['pair']['pos']} ↔ {result['pair']['neg']} · {result['n']} paired answers "
        f"(same prompts and seeds)",
        "",
        "| metric | A | B | A − B [95% CI] | A>B / A<B / = | sign p |",
        "|---|---|---|---|---|---|",
    ]
    for metric, row in result["paired"].items():
        if row["n"] == 0:
            continue
        lines.append(
            f"| {metric} | {row['mean_a']:.3g} | {row['mean_b']:.3g} | {row['mean']:+.3g} "
            f"[{row['lo']:+.3g}, {row['hi']:+.3g}] | {row['wins']} / {row['losses']} / {row['ties']} "
            f"| {row['sign_p']:.2g} |"
        )
    judge = result.get("judge")
    if judge:
        lines += [
            "",
            f"## Judge ({judge['model']}, both orders; a verdict counts only when both agree)",
            "",
            "| question | A | B | tie | inconsistent | sign p |",
            "|---|---|---|---|---|---|",
        ]
        for question, row in judge["summary"].items():
            if isinstance(row, dict):
                lines.append(
                    f"| {question} | {row['A']} | {row['B']} | {row['tie']} | {row['inconsistent']} | "
                    f"{row['sign_p']:.2g} |"
                )
    return "\n".join(lines) + "\n"


def run_ab(cfg: ABConfig) -> tuple[dict, Path]:
    """Run both arms, score and compare them; returns (result, path of ab.md)."""
    from wsteer.manifest import write_run_record

    started = time.time()
    specs = [parse_arm(cfg.a, "a"), parse_arm(cfg.b, "b")]
    info = _steering_info(specs)
    pair = cfg.resolve_pair(info, where="ab", missing_from="no steering.json among the arms names them")
    arms, base_model, tokenizer = _load_arms(cfg, specs, info)
    terms = persona_terms(pair["pos"], pair["neg"], extra=cfg.vocabulary.extra_terms)
    prompts = resolve_prompts(cfg.prompts)
    rows = [
        {"prompt_id": p.id, "prompt": p.prompt, "domain": p.domain, "sample": s, "seed": derive_seed(cfg.seed, p.id, s)}
        for p in prompts
        for s in range(cfg.samples_per_prompt)
    ]
    answers = []
    for arm in arms:
        arm_answers = _answer(arm, tokenizer, cfg, rows, pair, terms)
        _score(arm, base_model, tokenizer, cfg, arm_answers, pair, terms)
        answers.append(arm_answers)
    result = {
        "stage": STAGE,
        "a": cfg.a,
        "b": cfg.b,
        "pair": pair,
        "n": len(rows),
        "paired": paired_table(answers[0], answers[1], cfg.seed),
    }
    if cfg.judge.enabled:
        k = min(cfg.judge.max_pairs, len(rows))
        verdicts = judge_pairs(
            [r["prompt"] for r in rows[:k]],
            [a["text"] for a in answers[0][:k]],
            [b["text"] for b in answers[1][:k]],
            pair["pos"],
            pair["neg"],
            cfg.judge,
        )
        result["judge"] = {"model": cfg.judge.describe(), "verdicts": verdicts, "summary": summarize_verdicts(verdicts)}
    out_dir = Path(cfg.out_dir)
    write_jsonl(
        out_dir / "generations.jsonl",
        [{k: v for k, v in a.items() if k != "messages"} for arm_answers in answers for a in arm_answers],
    )
    write_json(out_dir / "ab.json", {**result, "seconds": round(time.time() - started, 1)})
    report = atomic_write_text(out_dir / "ab.md", render_ab_markdown(result))
    write_run_record(
        out_dir,
        STAGE,
        cfg,
        seeds={"seed": cfg.seed},
        inputs={spec.label: Path(spec.path) for spec in specs if spec.path},
        launch=f"wsteer eval ab --config {DEFAULT_CONFIG}",
    )
    return result, report
