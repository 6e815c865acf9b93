"""``wsteer pairs …`` and ``wsteer templates …`` verbs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pairs`` and ``templates`` command groups."""
    pairs = subparsers.add_parser("pairs", help="persona pairs: lint, generate cho/rej, curate")
    pairs.add_subparsers(dest="pairs_command", metavar="VERB", required=True)
    templates = subparsers.add_parser("templates", help="system-prompt templates: screen template x pair")
    templates.add_subparsers(dest="templates_command", metavar="VERB", required=True)
