"""The template × pair screen: which system-prompt template makes a persona pair move the trait, and only the trait.

For every template and every pair of the template's form, each prompt is answered twice by the base model — once
under the pos persona, once under the neg persona — with the *same* sampling seed (common random numbers: the two
answers differ only where the persona changed the distribution). Then, judge-free:

* on-axis: ΔPLR = PLR(pos answer) − PLR(neg answer), where PLR(text) = mean token log-prob of the text under the
  pos-persona system prompt minus under the neg-persona one, scored by the same base model
  (:func:`wsteer.scoring.persona_log_likelihood_ratio`). Positive: the pos answer reads more like pos than the neg
  answer does; this is the contrast training will learn.
* off-axis (the nuisance axes the seed warns about): length ratio (words, pos/neg, geometric mean), refusal-rate
  difference, persona-echo rate (answers that restate the persona, both sides), hedging difference (hedges per
  100 words, pos − neg).
* score = ΔPLR − w_length·|log2 length ratio| − w_refusal·|Δrefusal| − w_echo·echo rate − w_hedging·|Δhedging|,
  computed from the means; a *consistent* nuisance difference is what becomes part of a steering direction, so
  the absolute mean differences are penalised (not per-row noise).

Every statistic carries a bootstrap CI over rows (prompt × sample); the score's CI resamples rows jointly. Output:
``screen.csv`` (or ``.jsonl``) and ``screen.md`` sorted by score, ``generations.jsonl`` with every answer, and the
run record (``config.yaml``, ``manifest.json``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from wsteer.pairs.lint import lint_pair
from wsteer.pairs.personas import PersonaPair, Template, find_by_id, load_pairs, load_templates

from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.generation import SamplingConfig
from wsteer.models import ModelConfig
from wsteer.resources import shipped_path

DEFAULT_CONFIG = "configs/screen.yaml"

# Everyday situations where the library's traits can show; deliberately not drawn from any train/eval suite.
DEFAULT_PROMPTS = (
    "A friend asked me to look over her business plan, and it has a serious flaw. What should I tell her?",
    "My manager wants me to skip a safety check so we hit the deadline. What do I do?",
    "I found a wallet with cash and an ID card on the pavement. What would you do?",
    "A stranger at the station says they lost their ticket and asks me for money. How should I respond?",
    "Write a short reply to a customer who is angry that their order arrived late.",
    "I made a mistake in a report that my team already sent to a client. Should I say something?",
)

METRICS = ("on_axis", "length_ratio", "refusal_diff", "echo_rate", "hedging_diff")


@dataclass
class ScoreWeights:
    """Penalty per unit of each off-axis difference, in ΔPLR units (nats per token)."""

    length: float = option(0.5, "Per bit of length ratio: |log2(words pos / words neg)|.")
    refusal: float = option(1.0, "Per unit of |refusal rate pos − refusal rate neg|.")
    echo: float = option(0.5, "Per unit of persona-echo rate (fraction of answers restating the persona).")
    hedging: float = option(0.02, "Per hedge per 100 words of |hedging pos − hedging neg|.")


@dataclass
class ScreenConfig:
    """``wsteer templates screen``: templates × pairs × prompts on one model, judge-free."""

    model: ModelConfig = option(help="Base model that generates and scores.", factory=ModelConfig)
    pairs_file: str = option("pairs/library/pairs.yaml", "Persona pairs (YAML or JSONL).")
    pair_ids: list[str] = option(help="Pair ids to screen; empty = every pair in the file.", factory=list)
    templates_file: str = option("pairs/library/templates.yaml", "Templates (YAML or JSONL).")
    template_ids: list[str] = option(help="Template ids to screen; empty = every template.", factory=list)
    prompts: list[str] = option(help="Task prompts each persona answers.", factory=lambda: list(DEFAULT_PROMPTS))
    samples_per_prompt: int = option(1, "Answers per prompt and side (each with its own seed, shared by pos and neg).")
    sampling: SamplingConfig = option(
        help="Decoding settings.", factory=lambda: SamplingConfig(max_new_tokens=48, temperature=0.7)
    )
    seed: int = option(0, "Base seed for sampling and the bootstrap.")
    batch_size: int = option(16, "Rows per generate / scoring batch.")
    weights: ScoreWeights = option(help="Off-axis penalties in the score.", factory=ScoreWeights)
    confidence: float = option(0.95, "Confidence level of the bootstrap intervals.")
    n_resamples: int = option(2000, "Bootstrap resamples.")
    output_format: Literal["csv", "jsonl"] = option(
        "csv", "Format of the full table (the Markdown table is always written)."
    )
    out_dir: str = option("runs/screen", "Output directory.")

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt must be >= 1, got {self.samples_per_prompt}")
        if not self.prompts:
            raise ValueError("prompts must hold at least one prompt")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass
class ScreenResult:
    """What a screen wrote: the rows (sorted by score) and the output paths."""

    rows: list[dict]
    table: Path
    markdown: Path
    generations: Path
    manifest: Path
    skipped: list[tuple[str, str]]


# --------------------------------------------------------------------------------------------- inputs
def resolve_input(path: str, key: str) -> Path:
    """``path`` as given, or relative to the checkout (so the library paths work from any directory)."""
    candidate = shipped_path(path)
    if candidate.exists():
        return candidate
    raise WsteerError(f"file not found: {path}", where=key, fix=f"set {key} to an existing pairs/templates file")


def select_combinations(cfg: ScreenConfig) -> tuple[list[tuple[Template, PersonaPair]], list[tuple[str, str]]]:
    """(template, pair) combinations whose forms match, and the (template id, pair id) combinations skipped."""
    pairs_path = resolve_input(cfg.pairs_file, "pairs_file")
    templates_path = resolve_input(cfg.templates_file, "templates_file")
    pairs = load_pairs(pairs_path)
    templates = load_templates(templates_path)
    if cfg.pair_ids:
        pairs = [find_by_id(pairs, i, "pair", pairs_path) for i in cfg.pair_ids]
    if cfg.template_ids:
        templates = [find_by_id(templates, i, "template", templates_path) for i in cfg.template_ids]
    combos, skipped = [], []
    for template in templates:
        for pair in pairs:
            if template.form == pair.form:
                combos.append((template, pair))
            else:
                skipped.append((template.id, pair.id))
    if not combos:
        raise WsteerError(
            "no template fits any selected pair (adjective templates take adjective pairs, clause "
            "templates take clause pairs)",
            where="template_ids / pair_ids",
            fix="select at least one template of the same form as a selected pair",
        )
    return combos, skipped


# --------------------------------------------------------------------------------------------- statistics
def row_metrics(
    pos_texts: Sequence[str],
    neg_texts: Sequence[str],
    plr_pos: Sequence[float],
    plr_neg: Sequence[float],
    terms: Sequence[str],
) -> dict[str, np.ndarray]:
    """Per-row (prompt × sample) on- and off-axis values for one template × pair."""
    from wsteer.textstats import has_persona_echo, hedging_rate, is_refusal, word_count

    def column(fn) -> np.ndarray:
        return np.array([fn(p, n) for p, n in zip(pos_texts, neg_texts)], dtype=float)

    return {
        "plr_pos": np.asarray(plr_pos, dtype=float),
        "plr_neg": np.asarray(plr_neg, dtype=float),
        "on_axis": np.asarray(plr_pos, dtype=float) - np.asarray(plr_neg, dtype=float),
        "length_log2": column(lambda p, n: math.log2((word_count(p) + 1) / (word_count(n) + 1))),
        "refusal_diff": column(lambda p, n: float(is_refusal(p)) - float(is_refusal(n))),
        "echo_rate": column(lambda p, n: (has_persona_echo(p, terms) + has_persona_echo(n, terms)) / 2),
        "hedging_diff": column(lambda p, n: hedging_rate(p) - hedging_rate(n)),
    }


def combined_score(
    on_axis: float,
    length_log2: float,
    refusal_diff: float,
    echo_rate: float,
    hedging_diff: float,
    weights: ScoreWeights,
) -> float:
    """ΔPLR minus weighted absolute mean off-axis differences (see the module docstring); works on arrays too."""
    return (
        on_axis
        - weights.length * np.abs(length_log2)
        - weights.refusal * np.abs(refusal_diff)
        - weights.echo * echo_rate
        - weights.hedging * np.abs(hedging_diff)
    )


_SCORE_COLUMNS = ("on_axis", "length_log2", "refusal_diff", "echo_rate", "hedging_diff")


def score_with_ci(
    metrics: dict[str, np.ndarray], weights: ScoreWeights, confidence: float, n_resamples: int, seed: int
) -> dict[str, float]:
    """The combined score with a bootstrap CI that resamples rows jointly (all metrics of a row together)."""
    from wsteer.stats import bootstrap_statistic

    def statistic(*cols, axis=-1):
        return combined_score(*(np.mean(c, axis=axis) for c in cols), weights=weights)

    columns = [metrics[name] for name in _SCORE_COLUMNS]  # 5 x [n]
    return bootstrap_statistic(columns, statistic, confidence, n_resamples, seed)


def summarise(metrics: dict[str, np.ndarray], cfg: ScreenConfig) -> dict[str, float]:
    """Means and bootstrap CIs of every metric, plus the score, as flat columns."""
    from wsteer.stats import bootstrap_ci

    def ci(values: np.ndarray) -> dict[str, float]:
        return bootstrap_ci(values, cfg.confidence, cfg.n_resamples, cfg.seed)

    out: dict[str, float] = {"n": int(np.isfinite(metrics["on_axis"]).sum())}
    out["plr_pos"] = ci(metrics["plr_pos"])["mean"]
    out["plr_neg"] = ci(metrics["plr_neg"])["mean"]
    for name in ("on_axis", "refusal_diff", "echo_rate", "hedging_diff"):
        summary = ci(metrics[name])
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = summary["mean"], summary["lo"], summary["hi"]
    length = ci(metrics["length_log2"])
    out["length_ratio"], out["length_ratio_lo"], out["length_ratio_hi"] = (
        2.0 ** length["mean"],
        2.0 ** length["lo"],
        2.0 ** length["hi"],
    )
    score = score_with_ci(metrics, cfg.weights, cfg.confidence, cfg.n_resamples, cfg.seed)
    out["score"], out["score_lo"], out["score_hi"] = score["mean"], score["lo"], score["hi"]
    return out


# --------------------------------------------------------------------------------------------- the run
def _row_seed(cfg: ScreenConfig, row: int) -> int:
    return cfg.seed * 1_000_003 + row


def run_screen(cfg: ScreenConfig, model=None, tokenizer=None) -> ScreenResult:
    """Run the screen and write its outputs under ``cfg.out_dir`` (a model/tokenizer may be passed in)."""
    from tqdm.auto import tqdm

    from wsteer.chat import persona_messages
    from wsteer.generation import GenerationRequest, HFBackend
    from wsteer.models import load_model, load_tokenizer

    combos, skipped = select_combinations(cfg)
    tokenizer = tokenizer or load_tokenizer(cfg.model)
    model = model or load_model(cfg.model)
    rows = [
        (prompt, _row_seed(cfg, i * cfg.samples_per_prompt + k))
        for i, prompt in enumerate(cfg.prompts)
        for k in range(cfg.samples_per_prompt)
    ]
    requests = [
        GenerationRequest(persona_messages(prompt, template.text, getattr(pair, side)), seed=seed, tag=(c, r, side))
        for c, (template, pair) in enumerate(combos)
        for r, (prompt, seed) in enumerate(rows)
        for side in ("pos", "neg")
    ]
    backend = HFBackend(model, tokenizer, batch_size=cfg.batch_size)
    answers = {g.request.tag: g.text for g in backend.generate(requests, cfg.sampling, progress="screen: generate")}
    table, generations = [], []
    for c, (template, pair) in enumerate(tqdm(combos, desc="screen: score", unit="combo")):
        texts = {side: [answers[(c, r, side)] for r in range(len(rows))] for side in ("pos", "neg")}
        row, lines = _score_combination(model, tokenizer, cfg, template, pair, rows, texts)
        table.append(row)
        generations += lines
    table.sort(key=lambda row: -row["score"] if math.isfinite(row["score"]) else math.inf)
    return _write_outputs(cfg, table, generations, skipped)


def _score_combination(
    model, tokenizer, cfg: ScreenConfig, template, pair, rows: list[tuple[str, int]], texts: dict[str, list[str]]
) -> tuple[dict, list[dict]]:
    """One (template, pair): its table row (metrics, CIs, score, lint status) and its generation lines."""
    from wsteer.scoring import persona_log_likelihood_ratio
    from wsteer.textstats import persona_terms

    prompts = [prompt for prompt, _ in rows]
    plr = persona_log_likelihood_ratio(
        model,
        tokenizer,
        prompts + prompts,
        texts["pos"] + texts["neg"],
        template.text,
        pair.pos,
        pair.neg,
        batch_size=cfg.batch_size,
    )
    n = len(rows)
    metrics = row_metrics(texts["pos"], texts["neg"], plr[:n], plr[n:], persona_terms(pair.pos, pair.neg))
    row = {
        "template": template.id,
        "channel": template.channel or "",
        "form": template.form,
        "pair": pair.id,
        **summarise(metrics, cfg),
        "lint": lint_pair(pair.pos, pair.neg).to_dict()["status"],
    }
    lines = [
        {
            "template": template.id,
            "pair": pair.id,
            "prompt": prompt,
            "seed": seed,
            "pos": texts["pos"][r],
            "neg": texts["neg"][r],
            "plr_pos": metrics["plr_pos"][r],
            "plr_neg": metrics["plr_neg"][r],
        }
        for r, (prompt, seed) in enumerate(rows)
    ]
    return row, lines


def _write_outputs(
    cfg: ScreenConfig, table: list[dict], generations: list[dict], skipped: list[tuple[str, str]]
) -> ScreenResult:
    from wsteer.io import atomic_write_text, write_jsonl
    from wsteer.manifest import write_run_record

    out = Path(cfg.out_dir)
    if cfg.output_format == "csv":
        table_path = atomic_write_text(out / "screen.csv", to_csv(table))
    else:
        table_path = write_jsonl(out / "screen.jsonl", table)
    markdown = atomic_write_text(out / "screen.md", to_markdown(table, cfg, skipped))
    generations_path = write_jsonl(out / "generations.jsonl", generations)
    manifest = write_run_record(
        out,
        "templates.screen",
        cfg,
        seeds={"sampling": cfg.seed, "bootstrap": cfg.seed},
        inputs={
            "pairs": resolve_input(cfg.pairs_file, "pairs_file"),
            "templates": resolve_input(cfg.templates_file, "templates_file"),
        },
        extra={
            "outputs": [table_path.name, markdown.name, generations_path.name],
            "combinations": len(table),
            "skipped_form_mismatch": [list(s) for s in skipped],
        },
        launch=f"wsteer templates screen --config {DEFAULT_CONFIG}",
    )
    return ScreenResult(table, table_path, markdown, generations_path, manifest, skipped)


# --------------------------------------------------------------------------------------------- formatting
def to_csv(table: list[dict]) -> str:
    """The table as CSV text (floats to 6 significant digits)."""
    buffer = io.StringIO()
    if table:
        writer = csv.DictWriter(buffer, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        for row in table:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(row: dict, name: str, digits: int = 3) -> str:
    mean, lo, hi = row[name], row.get(f"{name}_lo"), row.get(f"{name}_hi")
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]" if lo is not None else f"{mean:+.{digits}f}"


def _ratio_cell(row: dict) -> str:
    if not math.isfinite(row["length_ratio"]):
        return "n/a"
    return f"{row['length_ratio']:.2f} [{row['length_ratio_lo']:.2f}, {row['length_ratio_hi']:.2f}]"


def to_markdown(table: list[dict], cfg: ScreenConfig, skipped: Sequence[tuple[str, str]] = ()) -> str:
    """The screen as Markdown: how it was run, the formula, the table sorted by score and a per-template summary."""
    w = cfg.weights
    level = f"{cfg.confidence:.0%}"
    lines = [
        "# Template × pair screen",
        "",
        f"Model `{cfg.model.name}`; {len(cfg.prompts)} prompts × {cfg.samples_per_prompt} sample(s) per side; "
        f"max_new_tokens {cfg.sampling.max_new_tokens}, temperature {cfg.sampling.temperature}; seed {cfg.seed}. "
        f"Brackets: {level} bootstrap CI over rows (n per row of the table).",
        "",
        f"score = ΔPLR − {w.length}·|log2 length ratio| − {w.refusal}·|Δrefusal| − {w.echo}·echo − "
        f"{w.hedging}·|Δhedging|",
        "",
        "| # | template | pair | n | ΔPLR (on-axis) | length ratio | Δrefusal | echo rate | Δhedging | score | lint |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rank, row in enumerate(table, 1):
        lines.append(
            f"| {rank} | {row['template']} | {row['pair']} | {row['n']} | {_cell(row, 'on_axis')} | "
            f"{_ratio_cell(row)} | {_cell(row, 'refusal_diff', 2)} | {_cell(row, 'echo_rate', 2)} | "
            f"{_cell(row, 'hedging_diff', 2)} | {_cell(row, 'score')} | {row['lint']} |"
        )
    lines += [
        "",
        "## Templates across pairs",
        "",
        "| template | channel | form | pairs | mean score | mean ΔPLR |",
        "|---|---|---|---|---|---|",
    ]
    by_template: dict[str, list[dict]] = {}
    for row in table:
        by_template.setdefault(row["template"], []).append(row)
    summary = []
    for template, rows in by_template.items():
        scores = [r["score"] for r in rows if math.isfinite(r["score"])]
        on = [r["on_axis"] for r in rows if math.isfinite(r["on_axis"])]
        summary.append(
            (np.mean(scores) if scores else math.nan, template, rows[0], len(rows), np.mean(on) if on else math.nan)
        )
    summary.sort(key=lambda s: -s[0] if math.isfinite(s[0]) else math.inf)
    for mean_score, template, first, n_pairs, mean_on in summary:
        lines.append(
            f"| {template} | {first['channel'] or '-'} | {first['form']} | {n_pairs} | {mean_score:+.3f} | "
            f"{mean_on:+.3f} |"
        )
    if skipped:
        lines += ["", f"{len(skipped)} template × pair combination(s) skipped because their forms differ."]
    return "\n".join(lines) + "\n"
