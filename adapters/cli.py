"""``wsteer adapters …`` verbs: steer, merge, combine, calibrate, export, push, card, inspect. Each takes
``--config FILE`` and ``key=value`` overrides of its config dataclass (a leading ADAPTER may be positional), calls
one library function, and prints where its results went."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Callable, NamedTuple

from wsteer.errors import WsteerError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``adapters`` command group: one table row per verb (its config class, handler and help)."""
    adapters = subparsers.add_parser(
        "adapters", help="steer, merge, combine, calibrate, export, push, card, inspect adapters"
    )
    verbs = adapters.add_subparsers(dest="adapters_command", metavar="VERB", required=True)
    for verb in VERBS:
        _add_verb(verbs, verb)


class _Verb(NamedTuple):
    name: str
    config: str  # "module:Class" of the verb's config dataclass
    run: Callable[[argparse.Namespace], int]
    help: str
    description: str
    positional: Callable[[argparse.ArgumentParser], None] | None = None  # default: an optional ADAPTER
    default_config: str | None = None


def _add_verb(verbs: argparse._SubParsersAction, verb: _Verb) -> None:
    """One ``wsteer adapters NAME`` verb: its positional argument, ``--config`` + ``key=value`` of its config class."""
    from wsteer.cliargs import add_config_arguments

    module, _, class_name = verb.config.partition(":")
    parser = verbs.add_parser(verb.name, help=verb.help, description=verb.description)
    (verb.positional or _adapter_argument)(parser)
    add_config_arguments(parser, getattr(importlib.import_module(module), class_name), verb.default_config)
    parser.set_defaults(func=verb.run)


def _adapter_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "adapter", nargs="?", metavar="ADAPTER", help="adapter directory (or set adapter: in the config)"
    )


def _parts_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "parts", nargs="*", metavar="ADAPTER:WEIGHT", help="adapter directory and its weight (or parts: in the config)"
    )


def _require_adapter(cfg, verb: str) -> str:
    if not cfg.adapter:
        raise WsteerError(
            "no adapter given", where="adapter", fix=f"run `wsteer adapters {verb} ADAPTER …` or set adapter=DIR"
        )
    return cfg.adapter


# --------------------------------------------------------------------------------------------- steer
def _steer(args: argparse.Namespace) -> int:
    from wsteer.adapters.adapter import Adapter

    from wsteer.cliargs import config_from_args
    from wsteer.io import to_json

    cfg = config_from_args(args, positional="adapter")
    adapter = _require_adapter(cfg, "steer")
    if not cfg.prompts:
        raise WsteerError("no prompts given", where="prompts", fix='pass e.g. prompts=["Hi", "Tell me a story."]')
    rows = Adapter.load(adapter).generate(
        cfg.prompts, cfg.alphas, cfg.sampling, seed=cfg.seed, base=cfg.base, placement=cfg.placement
    )
    for row in rows:
        print(to_json(row) if cfg.json else f"[α = {row['alpha']:+g}] {row['prompt']}\n{row['text']}\n")
    return 0


# --------------------------------------------------------------------------------------------- merge
def _merge(args: argparse.Namespace) -> int:
    from wsteer.adapters.adapter import Adapter
    from wsteer.adapters.export import resolve_alpha

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="adapter")
    adapter = Adapter.load(_require_adapter(cfg, "merge"))
    alpha, _ = resolve_alpha(cfg.alpha, adapter.info, where="alpha")  # a number, or steering.json's α⁺ / α⁻
    result = adapter.merge(alpha, cfg.out, base=cfg.base, overwrite=cfg.overwrite)
    untied = f"; untied {', '.join(a for a, _ in result.untied)}" if result.untied else ""
    print(
        f"merged {cfg.adapter} at α = {result.alpha:g} into {result.out_dir} "
        f"({result.merged_tensors} weights changed{untied})"
    )
    return 0


# --------------------------------------------------------------------------------------------- combine
def _combine(args: argparse.Namespace) -> int:
    from wsteer.adapters.adapter import Adapter
    from wsteer.adapters.combine import parse_part

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="parts")
    parts = [parse_part(text) for text in cfg.parts]
    if not parts:
        raise WsteerError("nothing to combine", where="parts", fix="pass at least one ADAPTER:WEIGHT")
    out = Adapter.combine(parts, cfg.allow_unverified_base).save(cfg.out, overwrite=cfg.overwrite)
    print(f"combined {' '.join(f'{p}:{w:+g}' for p, w in parts)} into {out}")
    return 0


# --------------------------------------------------------------------------------------------- calibrate
def _calibrate(args: argparse.Namespace) -> int:
    from wsteer.adapters.calibrate import calibrate

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="adapter")
    result, report = calibrate(cfg)
    calibrated = result.calibrated_alpha()
    print(
        f"α⁺ = {result.alpha_plus:.4g} (p{round(cfg.quantile * 100)} KL {calibrated['kl_plus']:.3g}, base "
        f"perplexity of steered output {calibrated['base_perplexity_plus']:.3g})"
    )
    print(
        f"α⁻ = {result.alpha_minus:.4g} (p{round(cfg.quantile * 100)} KL {calibrated['kl_minus']:.3g}, base "
        f"perplexity of steered output {calibrated['base_perplexity_minus']:.3g})"
    )
    print(f"unsteered: base perplexity of its own output {calibrated['base_perplexity_unsteered']:.3g}")
    written = " and steering.json" if cfg.write_steering and (Path(cfg.adapter) / "steering.json").is_file() else ""
    print(f"report: {report}{written}")
    return 0


# --------------------------------------------------------------------------------------------- export
def _export(args: argparse.Namespace) -> int:
    from wsteer.adapters.export import export_adapter

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="adapter")
    out, alpha = export_adapter(cfg)
    print(f"exported {cfg.adapter} at α = {alpha:+.4g} ({cfg.alpha}) to {out}: a plain peft adapter, α folded in")
    return 0


# --------------------------------------------------------------------------------------------- push
def _push(args: argparse.Namespace) -> int:
    from wsteer.adapters.push import push_adapter

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="adapter")
    print(f"pushed {cfg.adapter} to {cfg.repo_id}: {push_adapter(cfg)}")
    return 0


# --------------------------------------------------------------------------------------------- card
def _card(args: argparse.Namespace) -> int:
    from wsteer.adapters.card import update_card

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args, positional="adapter")
    print(f"model card: {update_card(cfg)}")
    return 0


# --------------------------------------------------------------------------------------------- inspect
def _inspect(args: argparse.Namespace) -> int:
    from wsteer.adapters.inspect import format_report, inspect_adapter

    from wsteer.cliargs import config_from_args
    from wsteer.io import to_json

    cfg = config_from_args(args, positional="adapter")
    report = inspect_adapter(_require_adapter(cfg, "inspect"))
    print(to_json(report, indent=2) if cfg.json else format_report(report))
    return 0


# One row per verb: its config class (imported when the verb is declared), handler, help and description.
VERBS = (
    _Verb(
        "steer",
        "wsteer.adapters.steer:SteerConfig",
        _steer,
        "answer prompts with the adapter at one or more α",
        "Generate with the adapter's delta scaled by each α in alphas (0 = base). α > 0 steers "
        "toward steering.json's pos persona, α < 0 toward neg. Example: `wsteer adapters steer "
        'runs/honest/adapter alphas=[-1,0,1] prompts=["Is the sea wet?"]`.',
    ),
    _Verb(
        "merge",
        "wsteer.adapters.merge:MergeConfig",
        _merge,
        "write base + α·ΔW as a new checkpoint (streamed shard by shard)",
        "Merge the adapter at a fixed α into a copy of its base checkpoint. The result loads with "
        "plain AutoModelForCausalLM.from_pretrained or vLLM. Example: `wsteer adapters merge "
        "runs/honest/adapter alpha=1.5 out=runs/honest-1.5`.",
    ),
    _Verb(
        "combine",
        "wsteer.adapters.combine:CombineConfig",
        _combine,
        "one exact adapter for Σ w_i·ΔW_i (rank concatenation)",
        "Combine adapters of one base with signed weights, e.g. `wsteer adapters combine "
        "runs/honest/adapter:+1.0 runs/authority/adapter:-0.5 out=runs/mix/adapter`.",
        positional=_parts_argument,
    ),
    _Verb(
        "calibrate",
        "wsteer.adapters.calibrate:CalibrateConfig",
        _calibrate,
        "find α⁺/α⁻ reaching a target p95 per-token KL to the base",
        "Find α⁺ > 0 and α⁻ < 0 at which the p95 per-token KL(steered ‖ base) reaches target_kl; "
        "writes them into steering.json.",
        default_config="configs/calibrate.yaml",
    ),
    _Verb(
        "export",
        "wsteer.adapters.export:ExportConfig",
        _export,
        "a plain peft adapter with α folded into its weights (for peft, vLLM, lm-eval)",
        "Write a copy of the adapter whose lora_B is multiplied by α, so tools that run adapters at "
        "peft's default scaling run it at that α. Example: `wsteer adapters export runs/honest/adapter "
        "alpha=calibrated out=runs/honest/adapter-plus` (calibrated = α⁺, calibrated- = α⁻, or a number).",
    ),
    _Verb(
        "push",
        "wsteer.adapters.push:PushConfig",
        _push,
        "upload the adapter (peft files, model card, steering.json) to a Hub repo",
        "Create repo_id on the Hub if needed and upload the adapter with huggingface_hub. Endpoint "
        "and token: HF_ENDPOINT, HF_TOKEN or `hf auth login`. Example: `wsteer adapters push "
        "runs/honest/adapter repo_id=me/honest-steering`.",
    ),
    _Verb(
        "card",
        "wsteer.adapters.card:CardConfig",
        _card,
        "regenerate the model card (README.md), optionally with an eval sweep's figures",
        "Rewrite the adapter's README.md from steering.json. Example: `wsteer adapters card "
        "runs/honest/adapter sweep=runs/honest/sweep` adds the sweep's headline figures.",
    ),
    _Verb(
        "inspect",
        "wsteer.adapters.inspect:InspectConfig",
        _inspect,
        "base, personas, rank, targets, per-layer ‖ΔW‖, calibration",
        "Describe an adapter: base, personas, rank, targets, per-layer ‖ΔW‖, calibration.",
    ),
)
