"""``wsteer adapters …`` verbs: steer, merge, combine, calibrate, inspect. Each parses, calls one library
function, and prints where its results went."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``adapters`` command group."""
    from wsteer.adapters.calibrate import DEFAULT_CONFIG as CALIBRATE_CONFIG
    from wsteer.adapters.calibrate import CalibrateConfig

    from wsteer.cliargs import add_config_arguments

    adapters = subparsers.add_parser("adapters", help="steer, merge, combine, calibrate, inspect adapters")
    verbs = adapters.add_subparsers(dest="adapters_command", metavar="VERB", required=True)

    steer = verbs.add_parser(
        "steer",
        help="answer prompts with the adapter at one or more α",
        description="Generate with the adapter's delta scaled by each --alpha (0 = base). "
        "α > 0 steers toward steering.json's pos persona, α < 0 toward neg.",
    )
    steer.add_argument("adapter", metavar="ADAPTER", help="adapter directory")
    steer.add_argument(
        "--alpha",
        type=float,
        action="append",
        required=True,
        help="steering coefficient; repeat for several (e.g. --alpha -1 --alpha 0 --alpha 1)",
    )
    steer.add_argument("--prompt", action="append", required=True, help="prompt to answer; repeatable")
    steer.add_argument("--max-new-tokens", type=int, default=64, help="tokens per answer (default 64)")
    steer.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    steer.add_argument("--seed", type=int, default=0, help="sampling seed (same noise for every α)")
    steer.add_argument("--base", help="base model; default: the one the adapter records")
    steer.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    steer.set_defaults(func=_steer)

    merge = verbs.add_parser(
        "merge",
        help="write base + α·ΔW as a new checkpoint (streamed shard by shard)",
        description="Merge the adapter at a fixed α into a copy of its base checkpoint. The "
        "result loads with plain AutoModelForCausalLM.from_pretrained or vLLM.",
    )
    merge.add_argument("adapter", metavar="ADAPTER", help="adapter directory")
    merge.add_argument("--alpha", type=float, required=True, help="steering coefficient to bake in (any real)")
    merge.add_argument("--out", required=True, help="new checkpoint directory")
    merge.add_argument(
        "--base",
        help="base checkpoint; default: the one the adapter records (checked against steering.json's base_hash)",
    )
    merge.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    merge.set_defaults(func=_merge)

    combine = verbs.add_parser(
        "combine",
        help="one exact adapter for Σ w_i·ΔW_i (rank concatenation)",
        description="Combine adapters of one base with signed weights, e.g. "
        "`wsteer adapters combine runs/honest/adapter:+1.0 "
        "runs/authority/adapter:-0.5 --out runs/mix/adapter`.",
    )
    combine.add_argument("parts", nargs="+", metavar="ADAPTER:WEIGHT", help="adapter directory and its weight")
    combine.add_argument("--out", required=True, help="directory for the combined adapter")
    combine.add_argument(
        "--allow-unverified-base",
        action="store_true",
        help="combine even when base hashes are missing and recorded base names differ",
    )
    combine.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    combine.set_defaults(func=_combine)

    calibrate = verbs.add_parser(
        "calibrate",
        help="find α⁺/α⁻ reaching a target p95 per-token KL to the base",
        description="Find α⁺ > 0 and α⁻ < 0 at which the p95 per-token KL(steered ‖ "
        "base) reaches target_kl; writes them into steering.json.",
    )
    calibrate.add_argument(
        "adapter", nargs="?", metavar="ADAPTER", help="adapter directory (or set adapter: in the config)"
    )
    add_config_arguments(calibrate, CalibrateConfig, default_config=CALIBRATE_CONFIG)
    calibrate.set_defaults(func=_calibrate)

    inspect = verbs.add_parser("inspect", help="base, personas, rank, targets, per-layer ‖ΔW‖, calibration")
    inspect.add_argument("adapter", metavar="ADAPTER", help="adapter directory")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    inspect.set_defaults(func=_inspect)


def _steer(args: argparse.Namespace) -> int:
    from wsteer.adapters.steer import steer_generate

    from wsteer.io import to_json

    sampling = _sampling(args.max_new_tokens, args.temperature)
    rows = steer_generate(args.adapter, args.alpha, args.prompt, sampling, seed=args.seed, base=args.base)
    for row in rows:
        print(to_json(row) if args.json else f"[α = {row['alpha']:+g}] {row['prompt']}\n{row['text']}\n")
    return 0


def _sampling(max_new_tokens: int, temperature: float):
    from wsteer.errors import WsteerError
    from wsteer.generation import SamplingConfig

    try:
        return SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature)
    except ValueError as exc:
        raise WsteerError(str(exc), where="--max-new-tokens/--temperature", fix="pass valid values") from None


def _merge(args: argparse.Namespace) -> int:
    from wsteer.adapters.merge import merge_adapter

    result = merge_adapter(args.adapter, args.alpha, args.out, base=args.base, overwrite=args.overwrite)
    untied = f"; untied {', '.join(a for a, _ in result.untied)}" if result.untied else ""
    print(
        f"merged {args.adapter} at α = {result.alpha:g} into {result.out_dir} "
        f"({result.merged_tensors} weights changed{untied})"
    )
    return 0


def _combine(args: argparse.Namespace) -> int:
    from wsteer.adapters.combine import combine, parse_part

    parts = [parse_part(text) for text in args.parts]
    out = combine(parts, args.out, allow_unverified_base=args.allow_unverified_base, overwrite=args.overwrite)
    print(f"combined {' '.join(f'{p}:{w:+g}' for p, w in parts)} into {out}")
    return 0


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


def _inspect(args: argparse.Namespace) -> int:
    from wsteer.adapters.inspect import format_report, inspect_adapter

    from wsteer.io import to_json

    report = inspect_adapter(args.adapter)
    print(to_json(report, indent=2) if args.json else format_report(report))
    return 0
