"""``wsteer train …``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command (its config and objectives arrive with the training stage)."""
    subparsers.add_parser("train", help="train a steering LoRA adapter on curated cho/rej pairs")
