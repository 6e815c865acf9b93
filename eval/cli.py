"""``wsteer eval …`` verbs: sweep (α sweep + baselines + report), ab (two arms, paired statistics) and capability
(lm-eval tasks per α)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` command group."""
    from wsteer.eval.ab import DEFAULT_CONFIG as AB_CONFIG
    from wsteer.eval.ab import ABConfig
    from wsteer.eval.sweep import DEFAULT_CONFIG as SWEEP_CONFIG
    from wsteer.eval.sweep import SweepConfig

    from wsteer.cliargs import add_config_arguments

    evaluate = subparsers.add_parser("eval", help="alpha sweeps, metrics, A/B runs, reports")
    verbs = evaluate.add_subparsers(dest="eval_command", metavar="VERB", required=True)

    sweep = verbs.add_parser(
        "sweep",
        help="steer at several α in one batched pass, score trait and nuisances, write the report",
        description="Generate with the adapter at every α and with the prompting baselines, "
        "score the trait and every nuisance axis with bootstrap CIs, and write "
        "summary.json, report.md and report.html.",
    )
    sweep.add_argument("adapter", nargs="?", metavar="ADAPTER", help="adapter directory (or adapter: in the config)")
    add_config_arguments(sweep, SweepConfig, default_config=SWEEP_CONFIG)
    sweep.set_defaults(func=_sweep)

    ab = verbs.add_parser(
        "ab",
        help="two arms on identical prompts and seeds: paired differences, sign tests, optional LLM judge",
        description="Compare two arms (adapter:PATH@ALPHA, merged:PATH, base, prompt:pos|neg|none) "
        "answer by answer; writes ab.json and ab.md.",
    )
    add_config_arguments(ab, ABConfig, default_config=AB_CONFIG)
    ab.set_defaults(func=_ab)

    from wsteer.eval.capability import CapabilityConfig

    capability = verbs.add_parser(
        "capability",
        help="what steering costs: lm-eval-harness tasks (e.g. tinyMMLU) on the steered model at each α",
        description="Run lm-eval tasks on the adapter at every α (α = 0 is the base) and write capability.json; "
        "with out_dir at a sweep's output, its report gets the scores beside the trait.",
    )
    capability.add_argument(
        "adapter", nargs="?", metavar="ADAPTER", help="adapter directory (or adapter: in the config)"
    )
    add_config_arguments(capability, CapabilityConfig)
    capability.set_defaults(func=_capability)


def _sweep(args: argparse.Namespace) -> int:
    from wsteer.eval.sweep import run_sweep

    from wsteer.cliargs import config_from_args

    result = run_sweep(config_from_args(args, positional="adapter"))
    dose = result.summary["dose_response"]
    print(
        f"sweep: {result.generated} answers generated, {result.cached} from cache, {result.seconds:.0f} s; "
        f"trait ρ over arm means {dose['spearman_arm_means']['rho']:.2f}, "
        f"{len(dose['flags'])} nuisance flag(s)"
    )
    print(f"report: {result.report}")
    return 0


def _ab(args: argparse.Namespace) -> int:
    from wsteer.eval.ab import run_ab

    from wsteer.cliargs import config_from_args

    result, report = run_ab(config_from_args(args))
    plr = result["paired"]["plr"]
    print(
        f"ab: {result['n']} paired answers; trait (PLR) A − B = {plr['mean']:+.3g} [{plr['lo']:+.3g}, "
        f"{plr['hi']:+.3g}], sign p = {plr['sign_p']:.2g}"
    )
    print(f"report: {report}")
    return 0


def _capability(args: argparse.Namespace) -> int:
    from wsteer.eval.capability import run_capability

    from wsteer.cliargs import config_from_args

    result = run_capability(config_from_args(args, positional="adapter"))
    summary = result.summary
    print(
        f"capability: {len(summary['tasks'])} task(s) at {len(summary['alphas'])} α values, "
        f"{len(summary['rows'])} scores, {result.seconds:.0f} s"
    )
    print(f"report: {result.report}")
    return 0
