"""``wsteer train``: curated pairs -> a steering LoRA adapter (``python -m wsteer.train`` and
``accelerate launch -m wsteer.train`` run this same verb)."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``wsteer train --config FILE [key=value …]``."""
    from wsteer.train.config import TrainConfig

    from wsteer.cliargs import add_config_arguments

    parser = subparsers.add_parser(
        "train",
        help="train a steering LoRA adapter on curated cho/rej pairs",
        description="Train a steering LoRA adapter on curated cho/rej pairs (objectives: dpo, bidirectional, "
        "contrastive_sft). Multi-GPU: accelerate launch --config_file accelerate_config.yaml -m wsteer.train "
        "--config FILE.",
    )
    add_config_arguments(parser, TrainConfig)
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from wsteer.train.run import train_adapter

    from wsteer.cliargs import config_from_args

    cfg = config_from_args(args)
    launch = shlex.join(["wsteer", "train", *(["--config", str(args.config)] if args.config else []), *args.overrides])
    result = train_adapter(cfg, launch=launch)
    if result.metrics:
        held = result.metrics.get("heldout", {})
        if held.get("n"):
            print(
                f"held-out preference margin (n={held['n']}): base {held['margin_base']:+.3f}, "
                f"+1 {held['margin_plus']:+.3f}"
                + (f", -1 {held['margin_minus']:+.3f}" if "margin_minus" in held else "")
            )
        print(f"adapter written to {result.output_dir}")
    return 0
