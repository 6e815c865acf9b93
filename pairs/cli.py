"""``wsteer pairs …`` and ``wsteer templates …`` verbs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pairs`` and ``templates`` command groups."""
    pairs = subparsers.add_parser("pairs", help="persona pairs: lint, generate cho/rej, curate")
    pair_verbs = pairs.add_subparsers(dest="pairs_command", metavar="VERB", required=True)
    _add_lint(pair_verbs)
    _add_generate(pair_verbs)
    _add_curate(pair_verbs)
    templates = subparsers.add_parser("templates", help="system-prompt templates: screen template x pair")
    template_verbs = templates.add_subparsers(dest="templates_command", metavar="VERB", required=True)
    _add_screen(template_verbs)


# --------------------------------------------------------------------------------------------- pairs lint
def _add_lint(verbs: argparse._SubParsersAction) -> None:
    from wsteer.pairs.lint import LintConfig

    from wsteer.cliargs import add_config_arguments

    parser = verbs.add_parser(
        "lint",
        help="mirror-test persona pairs: aligned word diff and findings",
        description="The mirror test: every clause of pos needs a counterpart in neg that flips only the pole. "
        "Prints an aligned word diff and findings (rule, severity, fix). Exit 1 if any finding is an "
        "error, 0 otherwise. Examples: `wsteer pairs lint pairs.yaml ids=[honest]`, "
        "`wsteer pairs lint pos='prefers vim' neg='prefers emacs'`.",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="pairs file (YAML or JSONL) to lint")
    add_config_arguments(parser, LintConfig)
    parser.set_defaults(func=_lint_cli)


def _lint_cli(args: argparse.Namespace) -> int:
    from wsteer.pairs.lint import format_reports, lint_pairs
    from wsteer.pairs.personas import PersonaPair, find_by_id, load_pairs

    from wsteer.cliargs import config_from_args
    from wsteer.errors import WsteerError
    from wsteer.io import to_json

    cfg = config_from_args(args, positional="file")
    if cfg.file and (cfg.pos or cfg.neg):
        raise WsteerError(
            "give either FILE or pos/neg, not both",
            where="wsteer pairs lint",
            fix="drop FILE or the pos=/neg= keys",
        )
    if cfg.file:
        pairs = load_pairs(cfg.file)
        if cfg.ids:
            pairs = [find_by_id(pairs, i.strip(), "pair", cfg.file) for i in cfg.ids if i.strip()]
    elif cfg.pos and cfg.neg:
        pairs = [PersonaPair(id="pair", pos=cfg.pos, neg=cfg.neg)]
    else:
        raise WsteerError(
            "nothing to lint", where="wsteer pairs lint", fix="pass a pairs FILE, or both pos=TEXT and neg=TEXT"
        )
    reports = lint_pairs(pairs)
    if cfg.second_opinion:
        from wsteer.pairs.second_opinion import SecondOpinionConfig, add_second_opinions

        from wsteer.config import load_config

        add_second_opinions(reports, load_config(SecondOpinionConfig, cfg.second_opinion))
    if cfg.json:
        print(
            to_json(
                {
                    "pairs": [r.to_dict() for r in reports],
                    "errors": sum(len(r.errors) for r in reports),
                    "warnings": sum(len(r.warnings) for r in reports),
                },
                indent=2,
            )
        )
    else:
        print(format_reports(reports))
    return 1 if any(r.errors for r in reports) else 0


# --------------------------------------------------------------------------------------------- templates screen
def _add_screen(verbs: argparse._SubParsersAction) -> None:
    from wsteer.pairs.screen import DEFAULT_CONFIG, ScreenConfig

    from wsteer.cliargs import add_config_arguments

    parser = verbs.add_parser(
        "screen",
        help="screen templates x pairs x prompts on a model (judge-free, bootstrap CIs)",
        description="Answer each prompt under the pos and the neg persona (same seed) for every template x pair "
        "of matching form, then rank by on-axis persona log-likelihood ratio minus off-axis "
        "penalties (length, refusal, persona echo, hedging).",
    )
    add_config_arguments(parser, ScreenConfig, default_config=DEFAULT_CONFIG)
    parser.set_defaults(func=_screen_cli)


def _screen_cli(args: argparse.Namespace) -> int:
    from wsteer.pairs.screen import run_screen

    from wsteer.cliargs import config_from_args

    result = run_screen(config_from_args(args))
    print(result.markdown.read_text(encoding="utf-8"))
    print(
        f"screen table: {result.table}\nmarkdown: {result.markdown}\ngenerations: {result.generations}\n"
        f"run record: {result.manifest}"
    )
    return 0


# --------------------------------------------------------------------------------------------- generate
def _add_generate(verbs: argparse._SubParsersAction) -> None:
    from wsteer.pairs.generate import DEFAULT_CONFIG, GenerateConfig

    from wsteer.cliargs import add_config_arguments

    parser = verbs.add_parser(
        "generate",
        help="answer task prompts under the pos and neg personas (cho/rej)",
        description="Generate cho (pos persona) and rej (neg persona) answers for every "
        "task prompt, same seed on both sides. Resumable: rerun to continue.",
    )
    add_config_arguments(parser, GenerateConfig, default_config=DEFAULT_CONFIG)
    parser.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from wsteer.pairs.generate import generate_pairs

    from wsteer.cliargs import config_from_args

    result = generate_pairs(config_from_args(args))
    print(
        f"pairs generate: {result.written} pairs written, {result.skipped} already done "
        f"({result.total} total) -> {result.out}; run record in {result.run_dir}"
    )
    return 0


# --------------------------------------------------------------------------------------------- curate
def _add_curate(verbs: argparse._SubParsersAction) -> None:
    from wsteer.pairs.curate import CurateConfig

    from wsteer.cliargs import add_config_help

    parser = verbs.add_parser(
        "curate",
        help="curate raw cho/rej pairs (echo, length, refusal, …) with a report",
        description="Apply the curation rules to a raw pairs file and write the curated "
        "pairs, the dropped pairs and a Markdown + JSON report. The input is "
        "never modified.",
    )
    _add_curate_options(parser)
    add_config_help(parser, CurateConfig)
    # IN and key=value overrides may come before or after the options; argparse cannot interleave positionals
    # with options, so everything from the first positional on is collected and split by _CurateWords.
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        metavar="IN [key=value ...]",
        action=_CurateWords,
        help="the raw pairs JSONL, then config overrides such as length.max_ratio=1.5",
    )
    parser.set_defaults(func=_curate, config_class=CurateConfig, input=None, overrides=[])


def _add_curate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML file with CurateConfig keys")
    parser.add_argument("--out", help="curated JSONL to write (default: config 'out', or curated.jsonl beside IN)")
    parser.add_argument(
        "--force",
        action="store_true",
        default=False,
        help="write the curated pairs even when more than abandon_share of them were rewritten or dropped",
    )


class _CurateWords(argparse.Action):
    """Split the words after the first positional into options, the input path and key=value overrides."""

    def __call__(self, parser, namespace, values, option_string=None):
        words = type(parser)(prog=parser.prog, add_help=False)
        _add_curate_options(words)
        words.add_argument("items", nargs="*")
        parsed = words.parse_intermixed_args(list(values))
        for name in ("config", "out"):
            if getattr(parsed, name) is not None:
                setattr(namespace, name, getattr(parsed, name))
        namespace.force = bool(namespace.force or parsed.force)
        inputs = [item for item in parsed.items if "=" not in item]
        if len(inputs) > 1:
            parser.error(f"expected one input file, got {len(inputs)}: {' '.join(inputs)}")
        if inputs:
            namespace.input = inputs[0]
        namespace.overrides = [item for item in parsed.items if "=" in item]


def _curate(args: argparse.Namespace) -> int:
    import sys

    from wsteer.pairs.curate import curate_file

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args)
    if args.input:
        cfg.input = args.input
    if args.out:
        cfg.out = args.out
    if args.force:
        cfg.force = True
    result = curate_file(cfg)
    print(result.summary())
    if result.abandoned and not result.written:
        print(f"wsteer: error: {result.abandon_message()}", file=sys.stderr)
        return 1
    if result.abandoned:
        print(f"wsteer: warning: written anyway (--force): {result.abandon_message()}", file=sys.stderr)
    return 0
