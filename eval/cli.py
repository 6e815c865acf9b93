"""``wsteer eval …`` verbs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` command group."""
    evaluate = subparsers.add_parser("eval", help="alpha sweeps, metrics, A/B runs, reports")
    evaluate.add_subparsers(dest="eval_command", metavar="VERB", required=True)
