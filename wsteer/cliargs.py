"""Command-line plumbing every verb shares: ``--config FILE`` plus ``key=value`` overrides loading into the
verb's config dataclass, and a ``--help`` that lists the verb's keys. It lives in the core so the stages'
``cli.py`` modules need nothing from the ``wsteer`` command (``wsteer.cli``) that assembles them."""

from __future__ import annotations

import argparse
import dataclasses
import re
import textwrap
from pathlib import Path
from typing import Any

from wsteer.config import config_reference, load_config
from wsteer.resources import shipped_path

HELP_WIDTH = 100
# A command-line word that is a config override: a dotted key of identifiers, then "=". A path such as
# runs/a=b:1 is not one, so positional paths may contain "=".
_OVERRIDE = re.compile(r"^-{0,2}[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*=")


def is_override(word: str) -> bool:
    """True when a command-line word reads as ``key=value`` (``key`` a dotted identifier)."""
    return bool(_OVERRIDE.match(word))


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_class: type,
    default_config: str | None = None,
    help_stop: tuple[type, ...] = (),
) -> None:
    """Give a verb ``--config FILE`` and ``key=value`` overrides that load into ``config_class``.

    The verb's ``--help`` then ends with every key of ``config_class``, its default and its help; nested configs
    of a class in ``help_stop`` get one line (e.g. the demo's stages, which their own verbs' ``--help`` list).
    """
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
        help="override the config keys listed below; nested keys are dotted (section.key=value)",
    )
    parser.set_defaults(config_class=config_class)
    add_config_help(parser, config_class, help_stop)


def add_config_help(parser: argparse.ArgumentParser, config_class: type, stop: tuple[type, ...] = ()) -> None:
    """List ``config_class``'s keys with defaults and help at the end of the verb's ``--help`` (its epilog).

    The epilog is preformatted, so the parser switches to argparse's public RawDescriptionHelpFormatter and its
    description is wrapped here instead.
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if parser.description:
        parser.description = textwrap.fill(" ".join(parser.description.split()), HELP_WIDTH)
    parser.epilog = config_epilog(config_class, stop)


def config_epilog(config_class: type, stop: tuple[type, ...] = ()) -> str:
    """Text listing every key of ``config_class`` (nested keys dotted): ``key = default`` and its help.

    Nested configs of a class in ``stop`` are one line whose default lists what differs from that class's own.
    """
    lines = [f"config keys ({config_class.__name__}; set in --config FILE or as key=value):"]
    for key, kind, default, help_text in config_reference(config_class, stop=stop):
        if default == "(required)":
            lines.append(f"  {key} ({kind}, required)")
        else:
            lines.append(f"  {key} ({kind})" + (f" = {default}" if default else ""))
        lines += textwrap.wrap(help_text, HELP_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def config_from_args(args: argparse.Namespace, positional: str | None = None) -> Any:
    """Load the verb's config from ``--config`` and the overrides.

    ``positional`` names a positional argument (e.g. ``adapter``, or a list such as ``parts``) that sets the
    config key of the same name. argparse hands the positional the leading words of the line, so words that
    read as ``key=value`` (see :func:`is_override`) and are not existing paths go back to the overrides.
    """
    path = args.config
    if path is not None:
        path = shipped_path(path)  # `wsteer demo` finds configs/demo.yaml from a wheel, outside a checkout
    overrides = list(args.overrides)
    value = getattr(args, positional) if positional else None
    if isinstance(value, list):
        moved = [word for word in value if is_override(word) and not Path(word).exists()]
        overrides = moved + overrides
        value = [word for word in value if word not in moved] or None
    elif value is not None and is_override(value) and not Path(value).exists():
        overrides.insert(0, value)
        value = None
    config = load_config(args.config_class, path, overrides)
    if value is not None:
        config = dataclasses.replace(config, **{positional: value})
    return config
