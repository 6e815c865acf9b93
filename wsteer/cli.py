"""The ``wsteer`` command: one subcommand per stage, each a thin layer over one library function.

Stages register their own verbs (``register(subparsers)`` in ``pairs/cli.py``, ``train/cli.py``, …), so this file
only assembles them and turns errors into one line: ``wsteer: error: <where>: <what> (fix: <how>)``, exit 2.
``--debug`` (anywhere on the line) shows tracebacks and library logs instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from wsteer import __version__
from wsteer.errors import WsteerError

# Stage packages that contribute subcommands, in pipeline order.
STAGE_CLIS = (
    "wsteer.pairs.cli",
    "wsteer.train.cli",
    "wsteer.adapters.cli",
    "wsteer.eval.cli",
    "wsteer.pipeline.demo",
)


class UsageError(WsteerError):
    """A command line argparse could not parse (bad flag value, missing argument, unknown option)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the CLI's one ``wsteer: error:`` line instead of usage + exit.

    Subparsers inherit the class, so every verb reports errors this way; ``--help`` still prints and exits 0.
    """

    def error(self, message: str):  # argparse calls this on a bad command line
        raise UsageError(message, where=self.prog, fix=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    """The full ``wsteer`` parser with every stage's verbs."""
    parser = _Parser(
        prog="wsteer",
        description="Weight steering: persona pair -> cho/rej pairs -> LoRA adapter -> steer at any alpha -> eval.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    parser.add_argument("--version", action="version", version=f"wsteer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in STAGE_CLIS:
        importlib.import_module(module).register(subparsers)
    return parser


def _quiet_libraries() -> None:
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a check failed, 2 a usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not debug:
        _quiet_libraries()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except WsteerError as exc:
        if debug:
            raise
        print(f"wsteer: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("wsteer: interrupted; finished work is saved and a rerun resumes", file=sys.stderr)
        return 130
    except Exception as exc:  # anything unexpected: one line, the traceback only on request
        if debug:
            raise
        first_line = (str(exc).splitlines() or [""])[0][:300]
        print(
            f"wsteer: error: unexpected {type(exc).__name__}: {first_line} "
            "(rerun with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


def stage_main(stage: str) -> None:
    """``python -m STAGE …`` runs ``wsteer STAGE …``."""
    sys.exit(main([stage, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
