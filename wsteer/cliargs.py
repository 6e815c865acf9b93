"""Command-line plumbing every verb shares: ``--config FILE`` plus ``key=value`` overrides loading into the
verb's config dataclass. It lives in the core so the stages' ``cli.py`` modules need nothing from the ``wsteer``
command (``wsteer.cli``) that assembles them."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from wsteer.config import load_config
from wsteer.resources import shipped_path


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, default_config: str | None = None
) -> None:
    """Give a verb ``--config FILE`` and ``key=value`` overrides that load into ``config_class``."""
    parser.add_argument(
        "--config",
        default=default_config,
        metavar="FILE",
        help=f"YAML file with {config_class.__name__} keys"
        + (f" (default: {default_config})" if default_config else ""),
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="override config keys, e.g. learning_rate=1e-4 model.name=path/to/model",
    )
    parser.set_defaults(config_class=config_class)


def config_from_args(args: argparse.Namespace, positional: str | None = None) -> Any:
    """Load the verb's config from ``--config`` and the overrides.

    ``positional`` names an optional positional argument (e.g. ``adapter``) that sets the config key of the same
    name; when argparse handed it the first ``key=value`` override instead, that is moved back to the overrides.
    """
    path = args.config
    if path is not None:
        path = shipped_path(path)  # `wsteer demo` finds configs/demo.yaml from a wheel, outside a checkout
    overrides = list(args.overrides)
    value = getattr(args, positional) if positional else None
    if value is not None and "=" in value and not Path(value).exists():
        overrides.insert(0, value)
        value = None
    config = load_config(args.config_class, path, overrides)
    if value is not None:
        config = dataclasses.replace(config, **{positional: value})
    return config
