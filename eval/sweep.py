"""``wsteer eval sweep``: steer at several α in one batched pass and measure what moved.

Arms: the adapter at each α (prompts carry no persona; α = 0 is the base) and the prompting baselines with the
adapter off — the pos-persona system prompt, the neg-persona one, and no persona. Every arm answers the same
prompts with the same seeds (common random numbers), and rows of all arms share batches: each row's α is applied
by :func:`wsteer.lora.per_row_adapter_scale`, each row's persona-vocabulary filter by
:class:`wsteer.leak.PersonaVocabularyProcessor`. A few prompts are also answered with the filter off, to measure
the leak rate the filter prevents.

With ``vector.pairs`` set, activation-steering arms join (:mod:`wsteer.eval.vector`): a mean-difference steering
vector from those cho/rej pairs at ±c, calibrated with the adapter's α± to the same p95 KL (``vector.target_kl``,
or the KL the adapter has at the swept ±``vector.match_alpha``).
Vector rows run in batches of their own, one coefficient per batch. With ``probes`` set, every arm also scores a
behavioural probe suite (:mod:`wsteer.eval.probe`): the per-arm ``probe`` metric, and its Spearman agreement with
PLR over the arm means.

Generations and their scores are cached (append-only JSONL under ``out_dir/cache``) by model fingerprint, adapter
hash, α, messages, seed, sampling and filter, so a rerun — or a resumed, interrupted run — regenerates nothing
that is already there.

Outputs in ``out_dir``: ``generations.jsonl`` (every row with its metrics), ``summary.json`` (per-arm means with
bootstrap 95% CIs, dose-response, leak rates, held-out margins), ``report.md``, ``report.html``, and the run record.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from wsteer.eval.arms import ArmSettings
from wsteer.eval.judge import JudgeConfig
from wsteer.eval.metrics import (
    ALL_METRICS,
    JUDGE_METRIC,
    NUISANCE_METRICS,
    PROBE_METRIC,
    TRAIT_METRIC,
    dose_response,
    summarize_arms,
)
from wsteer.eval.report import write_report
from wsteer.eval.scoring import length_sorted, score_answers
from wsteer.eval.vector import VectorArms

from wsteer.chat import build_messages, fill_template
from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.generation import GenerationRequest, HFBackend, derive_seed
from wsteer.io import JsonlAppendLog, sha256_json, sha256_path, write_json, write_jsonl
from wsteer.prompts import resolve_prompts
from wsteer.stats import spearman
from wsteer.textstats import persona_terms, text_metrics
from wsteer.vllm_engine import make_backend

DEFAULT_CONFIG = "configs/sweep.yaml"
STAGE = "eval.sweep"
SCORE_VERSION = 1  # bump when a metric's definition changes, so cached scores are recomputed


@dataclass
class SweepConfig(ArmSettings):
    """An α sweep of one adapter, with the prompting baselines, scored and reported."""

    adapter: str | None = option(None, "Adapter directory (from `wsteer train`); or pass it as ADAPTER.")
    alphas: list[float] = option(help="Steering coefficients (0 = base).", factory=lambda: [-2.0, -1.0, 0.0, 1.0, 2.0])
    baselines: list[Literal["pos", "neg", "none"]] = option(
        help="Prompting baselines, adapter off: pos / neg persona system prompt, no persona.",
        factory=lambda: ["pos", "neg", "none"],
    )
    leak_check_prompts: int = option(
        8,
        "Prompts also answered with the filter off (every arm but α = 0 / no "
        "persona), to measure the leak rate without it. 0 = skip.",
    )
    heldout_pairs: str | None = option(
        None,
        "Curated pairs JSONL (prompts disjoint from training) for the held-out preference margin per arm; null = skip.",
    )
    heldout_limit: int = option(32, "At most this many held-out pairs.")
    vector: VectorArms = option(
        help="Activation-steering arms: a mean-difference vector from cho/rej pairs, at ±c calibrated to the "
        "adapter's KL (off unless vector.pairs is set).",
        factory=VectorArms,
    )
    probes: str | None = option(
        None,
        "Behavioural probe suite scored under every arm (log p(true) − log p(false)): a built-in name "
        "('honesty') or a JSONL path; null = skip.",
    )
    judge: JudgeConfig = option(
        help="Optional LLM judge: each arm's answers against the base's (α = 0) on the same prompt and seed, both "
        "orders; per-arm metric 'judge' = +1 more pos / −1 less / 0 tie or inconsistent.",
        factory=JudgeConfig,
    )
    out_dir: str = option("runs/sweep", "Output directory (cache, generations, summary, report).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alphas:
            raise ValueError("alphas must not be empty")
        bad = [a for a in self.alphas if not math.isfinite(a)]
        if bad:
            raise ValueError(f"alphas must be finite numbers, got {bad}")
        match = self.vector.match_alpha
        if self.vector.pairs and self.vector.calibrate and match is not None:
            missing = [a for a in (match, -match) if a not in self.alphas]
            if missing:
                raise ValueError(
                    f"vector.match_alpha = {match:g} needs α = {missing} among alphas {self.alphas}: the vector is "
                    "matched to adapter arms the sweep has; add them to alphas or set match_alpha to a swept |α|"
                )


@dataclass
class Arm:
    """One way of answering: the adapter at ``alpha`` (kind 'adapter'), a persona prompt (kind 'prompt') or the
    steering vector at ``coefficient`` with the adapter off (kind 'vector')."""

    name: str
    kind: Literal["adapter", "prompt", "vector"]
    alpha: float | None = None
    persona: Literal["pos", "neg", "none"] | None = None
    coefficient: float | None = None


@dataclass
class SweepResult:
    """Where a sweep wrote its outputs."""

    out_dir: Path
    summary: dict
    report: Path
    generated: int
    cached: int
    seconds: float


def arm_name(alpha: float) -> str:
    """The display name of the adapter arm at ``alpha`` (e.g. ``α=+1``)."""
    return f"α={alpha:+g}"


def vector_arm_name(coefficient: float) -> str:
    """The display name of the steering-vector arm at ``coefficient`` (e.g. ``vector:c=+2.5``)."""
    return f"vector:c={coefficient:+g}"


def build_arms(cfg: SweepConfig, equal_kl: dict | None = None) -> list[Arm]:
    """Adapter arms in α order (with the equal-KL α±, if calibrated), the prompt baselines, then the vector arms
    (the equal-KL ±c and any fixed coefficients; c = 0 would be the base again, so it is left out)."""
    alphas = list(cfg.alphas)
    coefficients = [c for c in cfg.vector.coefficients if c != 0] if cfg.vector.pairs else []
    if equal_kl:
        alphas += [equal_kl["alpha_plus"], equal_kl["alpha_minus"]]
        coefficients += [equal_kl["c_plus"], equal_kl["c_minus"]]
    arms = [Arm(arm_name(a), "adapter", alpha=float(a)) for a in sorted(dict.fromkeys(alphas))]
    arms += [Arm(f"prompt:{p}", "prompt", persona=p) for p in cfg.baselines]
    arms += [Arm(vector_arm_name(c), "vector", coefficient=float(c)) for c in sorted(dict.fromkeys(coefficients))]
    return arms


# --------------------------------------------------------------------------------------------- planning
def plan_rows(cfg: SweepConfig, arms: list[Arm], prompts: list, pair: dict) -> list[dict]:
    """Every generation the sweep needs: (prompt, sample) x arm, plus unfiltered leak-check rows."""
    personas = {"pos": pair["pos"], "neg": pair["neg"], "none": None}
    rows = []
    for index, prompt in enumerate(prompts):
        for sample in range(cfg.samples_per_prompt):
            seed = derive_seed(cfg.seed, prompt.id, sample)
            for arm in arms:
                persona = personas[arm.persona] if arm.kind == "prompt" else None
                system = fill_template(pair["template"], persona) if persona else None
                base = {
                    "arm": arm.name,
                    "kind": arm.kind,
                    "alpha": arm.alpha,
                    "persona": arm.persona,
                    "coefficient": arm.coefficient,
                    "scale": arm.alpha if arm.kind == "adapter" else 0.0,
                    "prompt_id": prompt.id,
                    "prompt": prompt.prompt,
                    "domain": prompt.domain,
                    "sample": sample,
                    "seed": seed,
                    "messages": build_messages(prompt.prompt, system),
                }
                filtering = cfg.vocabulary.mode != "off"
                rows.append({**base, "filtered": filtering})
                is_base = base["scale"] == 0.0 and persona is None and arm.coefficient is None
                if filtering and index < cfg.leak_check_prompts and not is_base:
                    rows.append({**base, "filtered": False})
    return rows


def _generation_key(row: dict, fingerprint: dict, cfg: SweepConfig, terms: list[str]) -> str:
    # Vector rows add the vector and its coefficient; other rows keep the keys earlier caches hold.
    vector = {"vector": row["vector"], "coefficient": row["coefficient"]} if row.get("coefficient") is not None else {}
    return sha256_json(
        {
            **vector,
            "model": fingerprint,
            "scale": row["scale"],
            "messages": row["messages"],
            "seed": row["seed"],
            "sampling": dataclasses.asdict(cfg.sampling),
            "filter": {"mode": cfg.vocabulary.mode, "penalty": cfg.vocabulary.penalty, "terms": terms}
            if row["filtered"]
            else None,
        }
    )


# --------------------------------------------------------------------------------------------- running
def _resolve_pair(cfg: SweepConfig, info) -> dict:
    """The pair the prompt baselines and the trait score use: the config's keys, else the adapter's steering.json."""
    why = "its steering.json names none (trained on data without personas)" if info else "it has no steering.json"
    return cfg.resolve_pair(
        info,
        where="adapter",
        missing_from=f"the adapter gives none: {why}",
        retrain_hint=" (or retrain with pair.pos=… pair.neg=… pair.template=…)",
    )


def _by_coefficient(items: list, coefficient) -> dict:
    """``items`` grouped by ``coefficient(item)`` (None: not a vector row), in first-seen order."""
    groups: dict = {}
    for item in items:
        groups.setdefault(coefficient(item), []).append(item)
    return groups


def _generate_missing(
    model, tokenizer, cfg: SweepConfig, rows: list[dict], log: JsonlAppendLog, terms: list[str], steering=None
) -> int:
    """Generate rows whose key is not in the cache log; append each chunk as it finishes. Returns the count.
    ``steering``: the :class:`~wsteer.eval.vector.VectorSteering` vector rows are generated under."""
    from wsteer.leak import PersonaVocabularyProcessor
    from wsteer.lora import per_row_adapter_scale

    cached = {r["key"] for r in log.records}
    todo, seen = [], set()
    for row in rows:
        if row["key"] not in cached and row["key"] not in seen:
            seen.add(row["key"])
            tag = (row["key"], row["scale"], row["filtered"], row.get("coefficient"))
            steer = (cfg.adapter, row["scale"])  # how the vllm engine steers the row (hf: the batch hook below)
            todo.append(GenerationRequest(row["messages"], seed=row["seed"], tag=tag, adapter=steer))
    if not todo:
        return 0
    # Rows of adapter and prompt arms share batches (per-row α); each vector coefficient gets batches of its own.
    engine = make_backend(cfg.engine, model, tokenizer, cfg.batch_size, cfg.vllm)
    # Vector rows steer through transformers forward hooks, so they run on the hf engine whatever cfg.engine says.
    hf_backend = engine if engine.name == "hf" else HFBackend(model, tokenizer, batch_size=cfg.batch_size)
    mode = "ban" if cfg.vocabulary.mode == "ban" else "penalty"

    def processors(batch):
        if cfg.vocabulary.mode == "off":
            return []
        per_row = [terms if request.tag[2] else [] for request in batch]
        return [PersonaVocabularyProcessor(tokenizer, per_row, mode=mode, penalty=cfg.vocabulary.penalty)]

    def scales(batch):
        coefficients = {request.tag[3] for request in batch}
        if coefficients != {None}:
            return steering([request.tag[3] for request in batch])  # raises on a batch mixing coefficients
        return per_row_adapter_scale(model, [request.tag[1] for request in batch])

    from tqdm.auto import tqdm

    chunk = cfg.batch_size * 2  # append to the cache every two batches, so a kill loses little
    with tqdm(total=len(todo), desc="sweep: generate", unit="row") as bar:
        for coefficient, group in _by_coefficient(todo, lambda r: r.tag[3]).items():
            backend = engine if coefficient is None else hf_backend
            hook = scales if backend.name == "hf" else None  # vLLM steers each row by request.adapter
            for start in range(0, len(group), chunk):
                for g in backend.generate(
                    group[start : start + chunk], cfg.sampling, logits_processors=processors, batch_hook=hook
                ):
                    log.append(
                        {"key": g.request.tag[0], "text": g.text, "tokens": len(g.token_ids), "finish": g.finish_reason}
                    )
                bar.update(len(group[start : start + chunk]))
    return len(todo)


def is_measured(row: dict, cfg: SweepConfig) -> bool:
    """Whether a row counts in the arm metrics: generated as the sweep runs it (filtered, or no filter at all),
    not an unfiltered leak-check row."""
    return row["filtered"] or cfg.vocabulary.mode == "off"


def _score_missing(
    model,
    tokenizer,
    cfg: SweepConfig,
    rows: list[dict],
    pair: dict,
    terms: list[str],
    log: JsonlAppendLog,
    steering=None,
) -> None:
    """Score rows whose (generation key, score version) is not in the score cache (vector rows under
    ``steering`` at their coefficient, one coefficient per batch)."""
    from wsteer.lora import per_row_adapter_scale

    done = {r["key"] for r in log.records if r.get("version") == SCORE_VERSION}
    todo, seen = [], set()
    for row in rows:
        if row["key"] not in done and row["key"] not in seen:
            seen.add(row["key"])
            todo.append(row)
    from tqdm.auto import tqdm

    # Leak-check rows only feed the leak rate: text metrics, no model passes.
    model_scored = [r for r in todo if is_measured(r, cfg)]
    for row in todo:
        if not is_measured(row, cfg):
            log.append({"key": row["key"], "version": SCORE_VERSION, **text_metrics(row["text"], terms)})
    chunk = cfg.batch_size * 4
    # One coefficient per part (the vector's hook is one c per forward); within it, shortest answers first, so
    # every batch pads to answers of similar length. Rows keep their own α, so per-row scaling follows the order.
    parts = [
        group[start : start + chunk]
        for group in map(length_sorted, _by_coefficient(model_scored, lambda r: r.get("coefficient")).values())
        for start in range(0, len(group), chunk)
    ]
    with tqdm(total=len(model_scored), desc="sweep: score", unit="row", disable=not model_scored) as bar:
        for part in parts:
            scales = [r["scale"] for r in part]
            coefficient = part[0].get("coefficient")
            records = score_answers(
                model,
                (lambda a, b, c=coefficient: steering.at(c))
                if coefficient is not None
                else (lambda a, b, scales=scales: per_row_adapter_scale(model, scales[a:b])),
                model,
                tokenizer,
                part,
                pair,
                terms,
                cfg.batch_size,
                kl=cfg.kl,
            )
            for row, record in zip(part, records):
                log.append({"key": row["key"], "version": SCORE_VERSION, **record})
            bar.update(len(part))


def arm_context(model, arm: Arm, steering=None):
    """Context that runs ``model`` as ``arm`` answers: the adapter at α, the vector at c (adapter off), or the
    base (prompt arms: their persona is in the system prompt, see :func:`arm_system`)."""
    from wsteer.lora import scaled_adapter

    if arm.kind == "vector":
        return steering.at(arm.coefficient)
    return scaled_adapter(model, arm.alpha if arm.kind == "adapter" else 0.0)


def arm_system(arm: Arm, pair: dict) -> str | None:
    """The system prompt an arm answers under: its persona for a prompt arm, none otherwise."""
    persona = {"pos": pair["pos"], "neg": pair["neg"]}.get(arm.persona or "none")
    return fill_template(pair["template"], persona) if persona else None


def heldout_margins(model, tokenizer, cfg: SweepConfig, arms: list[Arm], pair: dict, steering=None) -> list[dict]:
    """One row per (arm, held-out pair): the length-normalised margin logp(cho) − logp(rej) under that arm."""
    from wsteer.io import read_jsonl
    from wsteer.records import PairRecord
    from wsteer.scoring import preference_margins

    records = read_jsonl(cfg.heldout_pairs, PairRecord)[: cfg.heldout_limit]
    prompts, cho, rej = ([r[k] for r in records] for k in ("prompt", "cho", "rej"))
    out = []
    for arm in arms:
        with arm_context(model, arm, steering):
            margins = preference_margins(
                model, tokenizer, prompts, cho, rej, system=arm_system(arm, pair), batch_size=cfg.batch_size
            )
        out += [
            {"arm": arm.name, "alpha": arm.alpha, "pair_id": r["id"], "margin": m} for r, m in zip(records, margins)
        ]
    return out


def probe_rows(model, tokenizer, cfg: SweepConfig, arms: list[Arm], pair: dict, steering=None) -> list[dict]:
    """One row per (arm, probe item): ``probe`` = log p(true) − log p(false) under that arm
    (:func:`wsteer.eval.probe.probe_scores`)."""
    from wsteer.eval.probe import load_probe_items, probe_scores

    items = load_probe_items(cfg.probes)
    out = []
    for arm in arms:
        context = arm_context(model, arm, steering)
        scores = probe_scores(model, tokenizer, items, context, arm_system(arm, pair), cfg.batch_size)
        out += [{"arm": arm.name, "alpha": arm.alpha, "item_id": i["id"], "probe": v} for i, v in zip(items, scores)]
    return out


def judge_rows(cfg: SweepConfig, arms: list[Arm], rows: list[dict], pair: dict) -> list[dict]:
    """One row per (arm, answer) judged against the base's answer to the same (prompt, sample):
    ``judge`` = +1 when the judge finds the arm's answer more pos, −1 less, 0 a tie or position-inconsistent."""
    from wsteer.eval.judge import judge_pairs

    base = {(r["prompt_id"], r["sample"]): r for r in rows if is_measured(r, cfg) and r["arm"] == arm_name(0.0)}
    if not base:
        raise WsteerError(
            "the judge compares every arm with the base, but α = 0 is not swept", where="alphas", fix="add 0 to alphas"
        )
    score = {"A": 1.0, "B": -1.0, "tie": 0.0}
    out = []
    for arm in arms:
        if arm.kind == "adapter" and arm.alpha == 0.0:
            continue
        mine = [r for r in rows if is_measured(r, cfg) and r["arm"] == arm.name][: cfg.judge.max_pairs]
        others = [base[(r["prompt_id"], r["sample"])]["text"] for r in mine]
        verdicts = judge_pairs(
            [r["prompt"] for r in mine], [r["text"] for r in mine], others, pair["pos"], pair["neg"], cfg.judge
        )
        out += [
            {"arm": arm.name, "alpha": arm.alpha, "prompt_id": r["prompt_id"], "judge": score[v["trait"]]}
            for r, v in zip(mine, verdicts)
        ]
    return out


def leak_rates(rows: list[dict]) -> dict:
    """Leak rate with and without the filter, over the same (prompt, arm) rows."""
    unfiltered = {(r["arm"], r["prompt_id"], r["sample"]): r for r in rows if not r["filtered"]}
    filtered = [r for r in rows if r["filtered"] and (r["arm"], r["prompt_id"], r["sample"]) in unfiltered]
    if not unfiltered:
        return {}
    return {
        "filtered_rate": sum(r["leak"] for r in filtered) / max(1, len(filtered)),
        "unfiltered_rate": sum(r["leak"] for r in unfiltered.values()) / len(unfiltered),
        "n_unfiltered": len(unfiltered),
    }


def summarize(
    cfg: SweepConfig,
    arms: list[Arm],
    rows: list[dict],
    margin_rows: list[dict],
    pair: dict,
    adapter: str,
    model_name: str,
    n_prompts: int,
    probes: Sequence[dict] = (),
    vector: dict | None = None,
    judged: Sequence[dict] = (),
) -> dict:
    """The sweep summary the report and the demo read. ``probes``: :func:`probe_rows`; ``vector``: how the
    steering vector was built and the equal-KL settings (:func:`wsteer.eval.vector.equal_kl_settings`)."""
    filtered = [r for r in rows if is_measured(r, cfg)]
    arm_dicts = summarize_arms(
        filtered + margin_rows + list(probes) + list(judged),
        [dataclasses.asdict(a) for a in arms],
        ALL_METRICS,
        seed=cfg.seed,
    )
    adapter_rows = [r for r in filtered if r["kind"] == "adapter"]
    dose = dose_response(adapter_rows, TRAIT_METRIC, NUISANCE_METRICS)
    adapter_arms = [a for a in arm_dicts if a["kind"] == "adapter" and TRAIT_METRIC in a["metrics"]]
    dose["spearman_arm_means"] = spearman(
        [a["alpha"] for a in adapter_arms], [a["metrics"][TRAIT_METRIC]["mean"] for a in adapter_arms]
    )
    dose["spearman_margin"] = spearman(
        [r["alpha"] for r in margin_rows if r["alpha"] is not None],
        [r["margin"] for r in margin_rows if r["alpha"] is not None],
    )
    base_tokens = next(
        (a["metrics"].get("tokens", {}).get("mean") for a in arm_dicts if a["kind"] == "adapter" and a["alpha"] == 0.0),
        None,
    )
    for arm in arm_dicts:
        tokens = arm["metrics"].get("tokens", {}).get("mean")
        arm["length_ratio"] = tokens / base_tokens if tokens and base_tokens else None
    return {
        "stage": STAGE,
        "pair": pair,
        "adapter": adapter,
        "model": model_name,
        "n_prompts": n_prompts,
        "samples_per_prompt": cfg.samples_per_prompt,
        "alphas": sorted(dict.fromkeys(cfg.alphas)),
        "sampling": dataclasses.asdict(cfg.sampling),
        "vocabulary_filter": cfg.vocabulary.mode,
        "arms": arm_dicts,
        "dose_response": dose,
        "leak": leak_rates(rows),
        "heldout_pairs": len({r["pair_id"] for r in margin_rows}),
        "probe": probe_agreement(arm_dicts, cfg.probes, len({r["item_id"] for r in probes})) if probes else None,
        "judge": agreement(arm_dicts, JUDGE_METRIC, {"answers": len(judged)}) if judged else None,
        "vector": vector,
    }


def agreement(arm_dicts: list[dict], metric: str, info: dict) -> dict:
    """``info`` plus how ``metric`` agrees with the trait score: Spearman ρ of its per-arm means vs PLR's."""
    both = [a["metrics"] for a in arm_dicts if metric in a["metrics"] and TRAIT_METRIC in a["metrics"]]
    rho = spearman([m[metric]["mean"] for m in both], [m[TRAIT_METRIC]["mean"] for m in both])
    return {**info, "spearman_vs_trait": rho}


def probe_agreement(arm_dicts: list[dict], suite: str, n_items: int) -> dict:
    """How the probe agrees with the trait score: Spearman ρ of the per-arm probe means vs PLR means."""
    return agreement(arm_dicts, PROBE_METRIC, {"suite": suite, "items": n_items})


def run_sweep(cfg: SweepConfig, model=None, tokenizer=None) -> SweepResult:
    """Generate, score, summarise and report an α sweep (see the module docs). Returns where it all went."""
    from wsteer.adapters.loading import load_steerable, open_adapter

    from wsteer.models import weights_fingerprint

    if not cfg.adapter:
        raise WsteerError("no adapter given", where="adapter", fix="pass ADAPTER or set adapter: in the config")
    started = time.time()
    out_dir = Path(cfg.out_dir)
    info = open_adapter(cfg.adapter).info  # fails early, with a clear error, on a missing or broken adapter
    pair = _resolve_pair(cfg, info)
    if model is None:
        model, tokenizer = load_steerable(cfg.adapter, cfg.base, dtype=cfg.dtype, placement=cfg.placement)
    terms = persona_terms(pair["pos"], pair["neg"], extra=cfg.vocabulary.extra_terms)
    prompts = resolve_prompts(cfg.prompts)
    steering, vector = _vector_arms(model, tokenizer, cfg)
    arms = build_arms(cfg, vector.get("equal_kl") if vector else None)
    rows = plan_rows(cfg, arms, prompts, pair)
    base_path = Path(model.wsteer_source["path"]) if hasattr(model, "wsteer_source") else None
    fingerprint = {
        "base": weights_fingerprint(base_path) if base_path else None,
        "adapter": sha256_path(Path(cfg.adapter) / "adapter_model.safetensors"),
    }
    for row in rows:
        if row["coefficient"] is not None:
            row["vector"] = vector["sha256"]
        row["key"] = _generation_key(row, fingerprint, cfg, terms)
    with JsonlAppendLog(out_dir / "cache" / "generations.jsonl") as gen_log:
        generated = _generate_missing(model, tokenizer, cfg, rows, gen_log, terms, steering)
        _attach_generations(rows, gen_log.records)
    with JsonlAppendLog(out_dir / "cache" / "scores.jsonl") as score_log:
        _score_missing(model, tokenizer, cfg, rows, pair, terms, score_log, steering)
        _attach_scores(rows, score_log.records)
    margin_rows = heldout_margins(model, tokenizer, cfg, arms, pair, steering) if cfg.heldout_pairs else []
    probes = probe_rows(model, tokenizer, cfg, arms, pair, steering) if cfg.probes else []
    judged = judge_rows(cfg, arms, rows, pair) if cfg.judge.enabled else []
    model_name = info.base_model if info else str(cfg.base)
    summary = summarize(
        cfg, arms, rows, margin_rows, pair, str(cfg.adapter), model_name, len(prompts), probes, vector, judged
    )
    report = _write_outputs(cfg, summary, rows, terms, generated)
    cached = len({r["key"] for r in rows}) - generated
    return SweepResult(out_dir, summary, report, generated, cached, round(time.time() - started, 1))


def _vector_arms(model, tokenizer, cfg: SweepConfig) -> tuple:
    """(VectorSteering, its summary entry) when ``vector.pairs`` is set, else (None, None); with
    ``vector.calibrate``, the entry holds the equal-KL α± and c± (:func:`wsteer.eval.vector.equal_kl_settings`)."""
    from wsteer.eval.vector import build_vector_steering, equal_kl_settings

    if not cfg.vector.pairs:
        return None, None
    steering, layer = build_vector_steering(model, tokenizer, cfg.vector, cfg.heldout_pairs, cfg.batch_size)
    entry = {"pairs": cfg.vector.pairs, "sha256": steering.digest(), **layer}
    if cfg.vector.calibrate:
        entry["equal_kl"] = equal_kl_settings(model, tokenizer, steering, cfg.vector, cfg.batch_size)
    return steering, entry


def _attach_generations(rows: list[dict], records: list[dict]) -> None:
    """Copy each row's text, length and finish reason from the generation cache."""
    texts = {r["key"]: r for r in records}
    for row in rows:
        cached = texts[row["key"]]
        row.update(text=cached["text"], tokens=cached["tokens"], finish=cached["finish"])
        # Answers cut at max_new_tokens cap the length metric: a length change can hide behind the cap.
        row["truncated"] = float(row["finish"] == "length")


def _attach_scores(rows: list[dict], records: list[dict]) -> None:
    """Copy each row's metrics from the score cache (current score version only)."""
    scores = {r["key"]: r for r in records if r.get("version") == SCORE_VERSION}
    for row in rows:
        row.update({k: v for k, v in scores[row["key"]].items() if k not in ("key", "version")})


def _write_outputs(cfg: SweepConfig, summary: dict, rows: list[dict], terms: list[str], generated: int) -> Path:
    """generations.jsonl, summary.json, the reports and the run record; returns the Markdown report's path."""
    from wsteer.manifest import write_run_record

    out_dir = Path(cfg.out_dir)
    write_jsonl(out_dir / "generations.jsonl", [{k: v for k, v in r.items() if k != "messages"} for r in rows])
    write_json(out_dir / "summary.json", summary)
    report = write_report(out_dir, summary, rows, terms)
    inputs = {"adapter": Path(cfg.adapter)}
    if cfg.heldout_pairs:
        inputs["heldout_pairs"] = Path(cfg.heldout_pairs)
    if cfg.vector.pairs:
        inputs["vector_pairs"] = Path(cfg.vector.pairs)
    write_run_record(
        out_dir,
        STAGE,
        cfg,
        seeds={"seed": cfg.seed},
        inputs=inputs,
        extra={"generated": generated, "rows": len(rows)},
        launch=f"wsteer eval sweep --config {DEFAULT_CONFIG} {cfg.adapter}",
    )
    return report
