"""``wsteer pairs …`` and ``wsteer templates …`` verbs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pairs`` and ``templates`` command groups."""
    pairs = subparsers.add_parser("pairs", help="persona pairs: lint, generate cho/rej, curate")
    pair_verbs = pairs.add_subparsers(dest="pairs_command", metavar="VERB", required=True)
    _add_generate(pair_verbs)
    _add_curate(pair_verbs)
    templates = subparsers.add_parser("templates", help="system-prompt templates: screen template x pair")
    templates.add_subparsers(dest="templates_command", metavar="VERB", required=True)


# --------------------------------------------------------------------------------------------- generate
def _add_generate(verbs: argparse._SubParsersAction) -> None:
    from pairs.generate import DEFAULT_CONFIG, GenerateConfig
    from wsteer.cli import add_config_arguments

    parser = verbs.add_parser("generate", help="answer task prompts under the pos and neg personas (cho/rej)",
                              description="Generate cho (pos persona) and rej (neg persona) answers for every "
                                          "task prompt, same seed on both sides. Resumable: rerun to continue.")
    add_config_arguments(parser, GenerateConfig, default_config=DEFAULT_CONFIG)
    parser.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from pairs.generate import generate_pairs
    from wsteer.cli import config_from_args

    result = generate_pairs(config_from_args(args))
    print(f"pairs generate: {result.written} pairs written, {result.skipped} already done "
          f"({result.total} total) -> {result.out}; run record in {result.run_dir}")
    return 0


# --------------------------------------------------------------------------------------------- curate
def _add_curate(verbs: argparse._SubParsersAction) -> None:
    from pairs.curate import CurateConfig

    parser = verbs.add_parser("curate", help="curate raw cho/rej pairs (echo, length, refusal, …) with a report",
                              description="Apply the curation rules to a raw pairs file and write the curated "
                                          "pairs, the dropped pairs and a Markdown + JSON report. The input is "
                                          "never modified.")
    _add_curate_options(parser)
    # IN and key=value overrides may come before or after the options; argparse cannot interleave positionals
    # with options, so everything from the first positional on is collected and split by _CurateWords.
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="IN [key=value ...]", action=_CurateWords,
                        help="the raw pairs JSONL, then config overrides such as length.max_ratio=1.5")
    parser.set_defaults(func=_curate, config_class=CurateConfig, input=None, overrides=[])


def _add_curate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML file with CurateConfig keys")
    parser.add_argument("--out", help="curated JSONL to write (default: config 'out', or curated.jsonl beside IN)")
    parser.add_argument("--force", action="store_true", default=False,
                        help="write the curated pairs even when more than abandon_share of them were rewritten "
                             "or dropped")


class _CurateWords(argparse.Action):
    """Split the words after the first positional into options, the input path and key=value overrides."""

    def __call__(self, parser, namespace, values, option_string=None):
        words = argparse.ArgumentParser(prog=parser.prog, add_help=False)
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

    from pairs.curate import curate_file
    from wsteer.cli import config_from_args

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
