"""``wsteer demo``: the whole pipeline on the embedded model, from one config.

lint the persona pair -> generate cho/rej pairs (train prompts, plus pairs on held-out prompts for the held-out
margin) -> curate -> train (dpo) -> calibrate -> sweep α with the prompting baselines -> report, under one run
directory::

    runs/demo/
      stages.json        per stage: input fingerprint, status, seconds, one-line summary
      lint.json          the mirror test of the pair
      pairs/             raw.jsonl, heldout_raw.jsonl (never rewritten), curated.jsonl, heldout.jsonl, reports
      adapter/           the steering adapter (plain peft) + steering.json (calibrated α written in)
      eval/              generations, summary.json, report.md, report.html
      stale/             outputs of a stage whose inputs changed, set aside instead of overwritten

Each stage is the same library function its own CLI verb calls. A rerun skips every finished stage whose
fingerprint (its resolved config + the hashes of its input files) is unchanged; an interrupted stage resumes
(generation and training are resumable themselves, the sweep caches every generation).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsteer.adapters.calibrate import CalibrateConfig
from wsteer.config import config_to_dict, option
from wsteer.errors import WsteerError
from wsteer.eval.sweep import SweepConfig
from wsteer.models import ModelConfig
from wsteer.pairs.curate import CurateConfig
from wsteer.pairs.generate import GenerateConfig, PairSource, TemplateSource
from wsteer.prompts import PromptSource
from wsteer.textstats import persona_terms
from wsteer.train.config import TrainConfig

DEFAULT_CONFIG = "configs/demo.yaml"
STAGES = ("lint", "generate", "curate", "train", "calibrate", "sweep")


@dataclass
class DemoChecks:
    """The figures the demo report is checked against. Every arm is judged against α = 0, per pole: a trait
    score that rises while the answers fall apart must fail, whatever the slope says."""

    min_spearman: float = option(0.9, "Lowest acceptable Spearman ρ of the trait score (arm means) over α.")
    max_alpha: float = option(
        1.0,
        "Poles are judged at every swept |α| up to this (1, or the calibrated α): beyond prompting, coherence, length.",
    )
    max_perplexity_ratio: float = option(
        1.2, "Highest base-model perplexity of the answers at α / at α = 0, on each pole (coherence)."
    )
    max_distinct2_drop: float = option(0.05, "Largest drop of distinct-2 from α = 0, on each pole (loops, repeats).")
    max_truncated: float = option(
        0.2, "Highest share of answers cut at max_new_tokens; above it the cap hides length (raise max_new_tokens)."
    )
    length_ratio: list[float] = option(
        help="Allowed [low, high] of mean length at α / mean length at α = 0, for every judged α.",
        factory=lambda: [0.85, 1.15],
    )
    echo_max_alpha: float = option(1.0, "Persona-echo rate must be 0 for every |α| up to this.")


# Stage keys the demo sets itself (all under run_dir); a demo config must leave them at their defaults.
DEMO_PATH_KEYS = {
    "generate": ("out",),
    "curate": ("input", "out"),
    "train": ("data", "heldout", "output_dir"),
    "calibrate": ("adapter", "report"),
    "sweep": ("adapter", "out_dir", "heldout_pairs"),
}
# Keys set from the demo's top level (instruction, vector_arms), refused in the sections for the same reason.
DEMO_SHARED_KEYS = {"generate": ("prompts.instruction",), "sweep": ("prompts.instruction", "vector.pairs")}


def _demo_generate() -> GenerateConfig:
    return GenerateConfig(prompts=PromptSource(split="train", limit=72))


def _demo_sweep() -> SweepConfig:
    return SweepConfig(prompts=PromptSource(split="heldout", limit=24))


@dataclass
class DemoConfig:
    """``wsteer demo``: lint -> generate -> curate -> train -> calibrate -> sweep -> report on one persona pair.

    The top-level pair, template, model and seed are used by every stage, and the demo sets every path
    (generate.out, curate.input/out, train.data/heldout/output_dir, calibrate.adapter/report, sweep.adapter/
    out_dir/heldout_pairs) under ``run_dir``: those keys in the stage sections are refused.
    """

    run_dir: str = option("runs/demo", "Run directory; every output goes under it.")
    pair: PairSource = option(help="The persona pair.", factory=lambda: PairSource(pos="honest", neg="dishonest"))
    template: TemplateSource = option(
        help="The system-prompt template.", factory=lambda: TemplateSource(text="Pretend you're a {persona} person.")
    )
    model: ModelConfig = option(help="The model to steer (every stage uses it).", factory=ModelConfig)
    seed: int = option(0, "Seed for every stage.")
    num_threads: int = option(
        0, "torch intra-op threads for every stage (0 = torch's default, one per core; on a busy machine 1 is faster)."
    )
    instruction: str = option(
        "",
        "Format instruction appended to every task prompt, in generation and evaluation alike (PromptSource "
        "`instruction`), e.g. 'Answer in three sentences or fewer.': answers then end before max_new_tokens.",
    )
    vector_arms: bool = option(
        True,
        "Add the activation-steering arms to the sweep: a mean-difference vector from the curated train pairs, "
        "calibrated to the adapter's KL (sweep.vector holds its settings).",
    )
    heldout_prompts: int = option(
        16, "Held-out prompts to generate curated pairs for (held-out preference margin in train and eval); 0 = none."
    )
    generate: GenerateConfig = option(help="Stage `wsteer pairs generate`.", factory=_demo_generate)
    curate: CurateConfig = option(help="Stage `wsteer pairs curate`.", factory=CurateConfig)
    train: TrainConfig = option(help="Stage `wsteer train`.", factory=TrainConfig)
    calibrate: CalibrateConfig = option(help="Stage `wsteer adapters calibrate`.", factory=CalibrateConfig)
    sweep: SweepConfig = option(help="Stage `wsteer eval sweep`.", factory=_demo_sweep)
    checks: DemoChecks = option(help="Targets the report is checked against.", factory=DemoChecks)
    rerun: list[str] = option(
        help=f"Stages to run again even when their inputs are unchanged ({', '.join(STAGES)}, or all).",
        factory=list,
    )

    def __post_init__(self) -> None:
        for section, keys in DEMO_PATH_KEYS.items():
            stage_config = getattr(self, section)
            defaults = {f.name: f.default for f in dataclasses.fields(stage_config)}
            for key in keys:
                if getattr(stage_config, key) != defaults[key]:
                    # Every output goes under run_dir: a stage path set here would be ignored or, for
                    # calibrate.report, written outside the run directory.
                    raise ValueError(
                        f"{section}.{key} is set by the demo under run_dir; remove it from the {section} section"
                    )
        for section, keys in DEMO_SHARED_KEYS.items():
            for key in keys:
                group, name = key.split(".")
                if getattr(getattr(getattr(self, section), group), name):
                    raise ValueError(f"{section}.{key} is set by the demo's top level; remove it from {section}")
        unknown = sorted(set(self.rerun) - {*STAGES, "all"})
        if unknown:
            raise ValueError(f"rerun: unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}, all")
        if len(self.checks.length_ratio) != 2 or self.checks.length_ratio[0] > self.checks.length_ratio[1]:
            raise ValueError(f"checks.length_ratio must be [low, high], got {self.checks.length_ratio}")


# --------------------------------------------------------------------------------------------- stage configs
@dataclass
class DemoPaths:
    """Where every stage reads and writes, under the run directory."""

    run_dir: Path

    @property
    def pairs(self) -> Path:
        return self.run_dir / "pairs"

    @property
    def raw(self) -> Path:
        return self.pairs / "raw.jsonl"

    @property
    def heldout_raw(self) -> Path:
        return self.pairs / "heldout_raw.jsonl"

    @property
    def curated(self) -> Path:
        return self.pairs / "curated.jsonl"

    @property
    def heldout(self) -> Path:
        return self.pairs / "heldout.jsonl"

    @property
    def adapter(self) -> Path:
        return self.run_dir / "adapter"

    @property
    def eval(self) -> Path:
        return self.run_dir / "eval"


def stage_configs(cfg: DemoConfig) -> dict[str, Any]:
    """The resolved config of every stage: the stage sections with the shared keys and the run's paths filled in."""
    paths = DemoPaths(Path(cfg.run_dir))
    shared = {"model": cfg.model, "seed": cfg.seed}
    generate = dataclasses.replace(
        cfg.generate,
        pair=cfg.pair,
        template=cfg.template,
        prompts=dataclasses.replace(cfg.generate.prompts, instruction=cfg.instruction),
        out=str(paths.raw),
        **shared,
    )
    heldout_generate = dataclasses.replace(
        generate,
        prompts=dataclasses.replace(generate.prompts, split="heldout", limit=cfg.heldout_prompts),
        out=str(paths.heldout_raw),
    )
    curate = dataclasses.replace(cfg.curate, input=str(paths.raw), out=str(paths.curated))
    # Held-out pairs only measure: keep what survives even when most needed rewriting.
    heldout_curate = dataclasses.replace(curate, input=str(paths.heldout_raw), out=str(paths.heldout), force=True)
    train = dataclasses.replace(
        cfg.train,
        data=str(paths.curated),
        heldout=str(paths.heldout) if cfg.heldout_prompts else None,
        output_dir=str(paths.adapter),
        **shared,
    )
    calibrate = dataclasses.replace(cfg.calibrate, adapter=str(paths.adapter))
    sweep = dataclasses.replace(
        cfg.sweep,
        adapter=str(paths.adapter),
        out_dir=str(paths.eval),
        heldout_pairs=str(paths.heldout) if cfg.heldout_prompts else None,
        seed=cfg.seed,
        prompts=dataclasses.replace(cfg.sweep.prompts, instruction=cfg.instruction),
        vector=dataclasses.replace(cfg.sweep.vector, pairs=str(paths.curated) if cfg.vector_arms else None),
    )
    return {
        "generate": generate,
        "heldout_generate": heldout_generate if cfg.heldout_prompts else None,
        "curate": curate,
        "heldout_curate": heldout_curate if cfg.heldout_prompts else None,
        "train": train,
        "calibrate": calibrate,
        "sweep": sweep,
    }


# --------------------------------------------------------------------------------------------- stage book-keeping
@dataclass
class Stage:
    """One pipeline stage: what it depends on, what it must leave behind, and how to run it."""

    name: str
    configs: list[Any]
    inputs: list[Path]
    outputs: list[Path]
    run: Callable[[], str]  # runs the stage, returns a one-line summary
    set_aside: list[Path] = dataclasses.field(default_factory=list)  # moved to stale/ when the inputs changed


def fingerprint(stage: Stage) -> str:
    """sha256 of the stage's resolved configs and the contents of its input files."""
    from wsteer.io import sha256_path

    payload = {
        "stage": stage.name,
        "configs": [config_to_dict(c) if c is not None else None for c in stage.configs],
        "inputs": {str(p): sha256_path(p) if p.exists() else None for p in stage.inputs},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class StageBook:
    """``stages.json``: per stage the fingerprint it last ran with, its status and summary (written atomically)."""

    def __init__(self, run_dir: Path):
        from wsteer.io import read_json

        self.path = run_dir / "stages.json"
        self.entries: dict[str, dict] = read_json(self.path) if self.path.is_file() else {}

    def record(self, name: str, **entry: Any) -> None:
        from wsteer.io import write_json

        self.entries[name] = {**self.entries.get(name, {}), **entry}
        write_json(self.path, self.entries)


def _set_aside(paths: list[Path], stale_dir: Path) -> list[Path]:
    """Move existing outputs of a stage whose inputs changed into ``stale_dir`` (never delete raw data)."""
    moved = []
    for path in paths:
        if path.exists():
            stale_dir.mkdir(parents=True, exist_ok=True)
            target = stale_dir / path.name
            path.rename(target)
            moved.append(target)
    return moved


def run_stage(stage: Stage, book: StageBook, run_dir: Path, force: bool, index: int, total: int) -> dict:
    """Run ``stage`` unless it finished before with the same fingerprint; returns its ``stages.json`` entry."""
    print_step = f"[{index}/{total}] {stage.name}"
    digest = fingerprint(stage)
    entry = book.entries.get(stage.name, {})
    finished = entry.get("status") == "done" and all(p.exists() for p in stage.outputs)
    if entry.get("fingerprint") == digest and finished and not force:
        print(f"{print_step}: skipped, inputs unchanged ({entry.get('summary', '')})", flush=True)
        return entry
    if entry.get("fingerprint") not in (None, digest):
        stale = run_dir / "stale" / f"{stage.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for moved in _set_aside(stage.set_aside, stale):
            print(f"{print_step}: inputs changed, previous output kept in {moved}", flush=True)
    print(f"{print_step} ...", flush=True)
    started = time.time()
    book.record(stage.name, fingerprint=digest, status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    summary = stage.run()
    seconds = round(time.time() - started, 1)
    book.record(stage.name, status="done", seconds=seconds, summary=summary)
    print(f"{print_step}: done in {seconds:.0f} s: {summary}", flush=True)
    return book.entries[stage.name]


# --------------------------------------------------------------------------------------------- stages
def _lint(cfg: DemoConfig, paths: DemoPaths) -> str:
    from wsteer.io import write_json
    from wsteer.pairs.generate import resolve_pair
    from wsteer.pairs.lint import lint_pair

    pair = resolve_pair(cfg.pair)
    report = lint_pair(pair.pos, pair.neg, pair_id=pair.id)
    write_json(paths.run_dir / "lint.json", report.to_dict())
    if report.errors:
        raise WsteerError(
            "the persona pair fails the mirror test: " + "; ".join(f"[{f.rule}] {f.message}" for f in report.errors),
            where="pair",
            fix=f"{report.errors[0].fix}; the full diff: `wsteer pairs lint pos={pair.pos!r} neg={pair.neg!r}`",
        )
    return f"{pair.pos!r} / {pair.neg!r}: {len(report.warnings)} warning(s), no errors"


def _generate(configs: dict) -> str:
    from wsteer.pairs.generate import generate_pairs, make_backend

    backend = make_backend(configs["generate"])  # one model load for both rounds (same model and batch size)
    result = generate_pairs(configs["generate"], backend)
    text = f"{result.total} train pairs ({result.written} new) -> {result.out}"
    if configs["heldout_generate"] is not None:
        held = generate_pairs(configs["heldout_generate"], backend)
        text += f"; {held.total} held-out pairs ({held.written} new)"
    return text


def _curate(configs: dict) -> str:
    from wsteer.pairs.curate import curate_file

    result = curate_file(configs["curate"])
    if result.abandoned and not result.written:
        raise WsteerError(result.abandon_message(), where="curate", fix="see the curation report named above")
    r = result.report
    text = f"{r['pairs_out']}/{r['pairs_in']} train pairs kept ({r['pairs_edited']} rewritten)"
    if configs["heldout_curate"] is not None:
        held = curate_file(configs["heldout_curate"]).report
        text += f", {held['pairs_out']}/{held['pairs_in']} held-out"
    return text


def _train(configs: dict) -> str:
    from wsteer.train.run import train_adapter

    result = train_adapter(configs["train"], launch="wsteer demo")
    heldout = result.metrics.get("heldout") or {}
    shift = heldout.get("shift_plus")
    text = f"{configs['train'].objective} adapter -> {result.output_dir}"
    if shift is not None:
        text += f"; held-out margin shift +1: {shift:+.3f}, -1: {heldout.get('shift_minus', float('nan')):+.3f}"
    return text


def _calibrate(configs: dict) -> str:
    from wsteer.adapters.calibrate import calibrate

    result, _ = calibrate(configs["calibrate"])
    return (
        f"α⁺ = {result.alpha_plus:.2f}, α⁻ = {result.alpha_minus:.2f} "
        f"(p{round(result.quantile * 100)} KL = {result.target_kl:g} nat)"
    )


def _sweep(configs: dict) -> str:
    from wsteer.eval.sweep import run_sweep

    result = run_sweep(configs["sweep"])
    rho = _rho(result.summary["dose_response"], "spearman_arm_means")
    return (
        f"ρ(trait, α) = {rho:.2f} over arm means; "
        f"{result.generated} generated, {result.cached} cached -> {result.report}"
    )


def build_stages(cfg: DemoConfig) -> list[Stage]:
    """The pipeline as :class:`Stage` objects, in order."""
    paths = DemoPaths(Path(cfg.run_dir))
    configs = stage_configs(cfg)
    held = [paths.heldout] if cfg.heldout_prompts else []
    adapter_files = [paths.adapter / "adapter_model.safetensors", paths.adapter / "adapter_config.json"]
    return [
        Stage("lint", [cfg.pair], [], [paths.run_dir / "lint.json"], lambda: _lint(cfg, paths)),
        Stage(
            "generate",
            [configs["generate"], configs["heldout_generate"]],
            [],
            [paths.raw, *([paths.heldout_raw] if cfg.heldout_prompts else [])],
            lambda: _generate(configs),
            set_aside=[paths.raw, paths.heldout_raw],
        ),
        Stage(
            "curate",
            [configs["curate"], configs["heldout_curate"]],
            [paths.raw, *([paths.heldout_raw] if cfg.heldout_prompts else [])],
            [paths.curated, *held],
            lambda: _curate(configs),
        ),
        Stage(
            "train",
            [configs["train"]],
            [paths.curated, *held],
            adapter_files,
            lambda: _train(configs),
            set_aside=[Path(f"{paths.adapter}.work")],
        ),
        Stage(
            "calibrate",
            [configs["calibrate"]],
            adapter_files,
            [paths.adapter / "calibration.json"],
            lambda: _calibrate(configs),
        ),
        Stage(
            "sweep",
            [configs["sweep"]],
            [*adapter_files, paths.adapter / "steering.json", *held, *([paths.curated] if cfg.vector_arms else [])],
            [paths.eval / "summary.json", paths.eval / "report.html"],
            lambda: _sweep(configs),
        ),
    ]


# --------------------------------------------------------------------------------------------- checks and report
def _rho(dose: dict, key: str) -> float:
    rho = (dose.get(key) or {}).get("rho")
    return math.nan if rho is None else float(rho)  # NaN is stored as null in JSON


def _mean(arm: dict | None, metric: str) -> float | None:
    value = ((arm or {}).get("metrics") or {}).get(metric, {}).get("mean")
    return None if value is None else float(value)


def _check(name: str, target: str, values: list[str], passed: bool) -> dict:
    return {"check": name, "target": target, "value": ", ".join(values) or "n/a", "passed": bool(passed)}


def _pole_arms(summary: dict, sign: int, max_alpha: float) -> list[dict]:
    """Adapter arms on one pole (sign +1 or -1) with 0 < |α| <= max_alpha, nearest to the base first."""
    arms = [a for a in summary["arms"] if a["kind"] == "adapter" and a["alpha"] * sign > 0]
    return sorted((a for a in arms if abs(a["alpha"]) <= max_alpha + 1e-9), key=lambda a: abs(a["alpha"]))


def beyond_prompting_check(summary: dict, sign: int, checks: DemoChecks, trait: str) -> dict:
    """The trait at the pole's largest judged α is past the matching persona prompt (pos on +, neg on -)."""
    persona = "pos" if sign > 0 else "neg"
    prompt = next((a for a in summary["arms"] if a["kind"] == "prompt" and a.get("persona") == persona), None)
    arms = _pole_arms(summary, sign, checks.max_alpha)
    steered, prompted = _mean(arms[-1] if arms else None, trait), _mean(prompt, trait)
    known = steered is not None and prompted is not None
    values = [f"α={arms[-1]['alpha']:g}: {steered:+.4f}", f"{persona} prompt: {prompted:+.4f}"] if known else []
    return _check(
        f"{'+' if sign > 0 else '−'} pole beyond prompting" + ("" if trait == "plr" else f" ({trait})"),
        f"{trait} at α={sign * checks.max_alpha:+g} {'>' if sign > 0 else '<'} the {persona}-persona prompt's",
        values,
        known and (steered - prompted) * sign > 0,
    )


def coherence_check(summary: dict, sign: int, checks: DemoChecks, base: dict | None) -> dict:
    """Perplexity ratio and distinct-2 drop against α = 0 at every judged α of one pole."""
    base_ppl, base_d2 = _mean(base, "perplexity"), _mean(base, "distinct_2")
    base_known = bool(base_ppl and base_d2 is not None)
    values, passed = [], base_known
    arms = _pole_arms(summary, sign, checks.max_alpha)
    for arm in arms:  # every arm is shown, also after one has failed: the reader sees how far each one is
        ppl, d2 = _mean(arm, "perplexity"), _mean(arm, "distinct_2")
        if not base_known or ppl is None or d2 is None:
            passed = False
            continue
        ratio, drop = ppl / base_ppl, base_d2 - d2
        values.append(f"α={arm['alpha']:g}: ppl ×{ratio:.2f}, distinct-2 {-drop:+.3f}")
        passed = passed and ratio <= checks.max_perplexity_ratio and drop <= checks.max_distinct2_drop
    return _check(
        f"{'+' if sign > 0 else '−'} pole coherent",
        f"perplexity ratio ≤ {checks.max_perplexity_ratio:g} and distinct-2 drop ≤ {checks.max_distinct2_drop:g} "
        f"at 0 < |α| ≤ {checks.max_alpha:g}",
        values,
        passed and bool(arms),
    )


def length_checks(judged: list[dict], checks: DemoChecks) -> list[dict]:
    """Answers end before the cap, and their length stays flat. When most answers hit the cap the length ratio
    says nothing (capped answers all have the cap's length), so the length check refuses to pass."""
    low, high = checks.length_ratio
    truncated = {a["alpha"]: _mean(a, "truncated") for a in judged}
    ratios = {a["alpha"]: a.get("length_ratio") for a in judged}
    capped = any(t is None or t > 0.5 for t in truncated.values())
    flat = bool(ratios) and all(r is not None and low <= r <= high for r in ratios.values())
    return [
        _check(
            "answers end before the cap",
            f"truncated share < {checks.max_truncated:g} at |α| ≤ {checks.max_alpha:g}",
            [f"α={a:g}: {t:.2f}" for a, t in sorted(truncated.items()) if t is not None],
            bool(truncated) and all(t is not None and t < checks.max_truncated for t in truncated.values()),
        ),
        _check(
            "length stays flat",
            f"length ratio to α = 0 within [{low}, {high}], measured below the cap",
            [f"α={a:g}: {r:.2f}" for a, r in sorted(ratios.items()) if r is not None]
            + (["refused: most answers hit the cap"] if capped else []),
            flat and not capped,
        ),
    ]


RHO_TOLERANCE = 1e-9  # Spearman's ρ is a ratio of small integers; compare it to its target up to rounding
PROBE_METRIC = "probe"  # wsteer.eval.probe: log p(true) − log p(false) under the arm


def acceptance_checks(summary: dict, checks: DemoChecks, trait: str = "plr") -> list[dict]:
    """The report's figures against the targets, each arm judged against α = 0 and each pole on its own: trait ρ
    over α, beyond the matching prompt on both poles (on PLR, and on the probe when one was scored), coherence on
    both poles, length below the cap, no echo."""
    dose = summary.get("dose_response") or {}
    adapter_arms = [a for a in summary["arms"] if a["kind"] == "adapter"]
    base = next((a for a in adapter_arms if a["alpha"] == 0.0), None)
    judged = [a for a in adapter_arms if abs(a["alpha"]) <= checks.max_alpha + 1e-9]
    rho = _rho(dose, "spearman_arm_means")
    echo = {a["alpha"]: _mean(a, "echo") for a in adapter_arms if abs(a["alpha"]) <= checks.echo_max_alpha}
    echo_known = [e for e in echo.values() if e is not None]
    # The second trait measure, when the sweep scored a probe suite: each pole must beat its prompt on it too.
    probed = any(PROBE_METRIC in a["metrics"] for a in summary["arms"])
    probe_checks = [beyond_prompting_check(summary, sign, checks, PROBE_METRIC) for sign in (+1, -1)] if probed else []
    return [
        _check(
            "trait rises with α",
            f"Spearman ρ over arm means ≥ {checks.min_spearman}",
            [f"ρ = {rho:.2f} over arm means ({_rho(dose, 'spearman'):.2f} over samples)"],
            # False for NaN. ρ over five arm means takes the values 1, 0.9, 0.8, …: one swap gives 0.8999999999999998
            # in floating point, which is 0.9 and must meet a 0.9 target.
            rho >= checks.min_spearman - RHO_TOLERANCE,
        ),
        beyond_prompting_check(summary, +1, checks, trait),
        beyond_prompting_check(summary, -1, checks, trait),
        *probe_checks,
        coherence_check(summary, +1, checks, base),
        coherence_check(summary, -1, checks, base),
        *length_checks(judged, checks),
        _check(
            "no persona echo",
            f"echo rate 0 at |α| ≤ {checks.echo_max_alpha:g}",
            [f"α={a:g}: {e:.2f}" for a, e in sorted(echo.items()) if e is not None],
            bool(echo_known) and all(e == 0 for e in echo_known),
        ),
    ]


def annotate_report(cfg: DemoConfig, book: StageBook) -> tuple[Path, list[dict]]:
    """Add the pipeline's stage summaries and the acceptance checks to the sweep's summary and report."""
    from wsteer.eval.report import write_report
    from wsteer.io import read_json, read_jsonl, write_json

    eval_dir = DemoPaths(Path(cfg.run_dir)).eval
    summary = read_json(eval_dir / "summary.json")
    checks = acceptance_checks(summary, cfg.checks)
    summary["pipeline"] = {
        "stages": [{"stage": s, **{k: book.entries[s].get(k) for k in ("summary", "seconds")}} for s in STAGES],
        "checks": checks,
    }
    write_json(eval_dir / "summary.json", summary)
    pair = summary["pair"]
    terms = persona_terms(pair["pos"], pair["neg"], extra=cfg.sweep.vocabulary.extra_terms)
    report = write_report(eval_dir, summary, read_jsonl(eval_dir / "generations.jsonl"), terms)
    return report, checks


def check_inputs(cfg: DemoConfig) -> None:
    """Refuse a bad pair, template or model path before anything is written (a later stage would find it only
    after the earlier ones ran)."""
    from wsteer.models import resolve_model_path
    from wsteer.pairs.generate import resolve_pair, resolve_template
    from wsteer.pairs.personas import check_form

    check_form(resolve_template(cfg.template), resolve_pair(cfg.pair))
    resolve_model_path(cfg.model.name, cfg.model.revision, cfg.model.allow_pickle)
    if cfg.vector_arms and importlib.util.find_spec("steering_vectors") is None:
        raise WsteerError(
            "the demo's activation-steering arms need the steering-vectors package, which is not installed",
            where="vector_arms",
            fix="pip install --no-deps steering-vectors==0.12.2 (its transformers<5 pin is too strict), "
            "or run without the vector arms: wsteer demo vector_arms=false",
        )


def run_demo(cfg: DemoConfig) -> tuple[Path, list[dict]]:
    """Run (or resume) the whole pipeline; returns the HTML report's path and the acceptance checks."""
    from wsteer.manifest import write_run_record

    check_inputs(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    write_run_record(run_dir, "demo", cfg, seeds={"seed": cfg.seed}, launch="wsteer demo")
    book = StageBook(run_dir)
    stages = build_stages(cfg)
    started = time.time()
    for index, stage in enumerate(stages, 1):
        force = "all" in cfg.rerun or stage.name in cfg.rerun
        run_stage(stage, book, run_dir, force, index, len(stages))
    report, checks = annotate_report(cfg, book)
    for check in checks:
        mark = "ok  " if check["passed"] else "MISS"
        print(f"  {mark} {check['check']}: {check['value']} (target: {check['target']})", flush=True)
    print(f"demo: {time.time() - started:.0f} s", flush=True)
    return report, checks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``wsteer demo``."""
    from wsteer.cliargs import add_config_arguments

    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the embedded model",
        description=__doc__.split("\n\n")[0],
    )
    stages = (GenerateConfig, CurateConfig, TrainConfig, CalibrateConfig, SweepConfig)  # each verb's --help has them
    add_config_arguments(parser, DemoConfig, default_config=DEFAULT_CONFIG, help_stop=stages)
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from wsteer.cliargs import config_from_args

    report, _ = run_demo(config_from_args(args))
    print(f"report: {report.resolve()}", file=sys.stdout)
    return 0


__all__ = ["DemoConfig", "acceptance_checks", "run_demo"]
