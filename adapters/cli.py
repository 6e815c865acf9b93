"""``wsteer adapters …`` verbs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``adapters`` command group."""
    adapters = subparsers.add_parser("adapters", help="steer, merge, combine, calibrate, inspect adapters")
    adapters.add_subparsers(dest="adapters_command", metavar="VERB", required=True)
