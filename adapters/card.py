"""``wsteer adapters card``: regenerate an adapter's model card, optionally adding an α sweep's headline figures.

The card itself is rendered in the core (:mod:`wsteer.card`) because training and calibration write it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsteer.adapters.loading import open_adapter

from wsteer.config import option
from wsteer.errors import ConfigError, DataError


@dataclass
class CardConfig:
    """``wsteer adapters card``: rewrite README.md from steering.json (plus an eval sweep's figures)."""

    adapter: str | None = option(None, "Adapter directory (or give it as the positional ADAPTER).")
    sweep: str | None = option(
        None,
        "summary.json (or its directory) of a `wsteer eval sweep` of this adapter: its headline figures are "
        "stored in steering.json (metrics.sweep) and shown on the card.",
    )
    repo_id: str | None = option(None, "Hub repo the usage snippets name; default: the one it was pushed to.")


def update_card(cfg: CardConfig) -> Path:
    """Store the sweep's headline figures (when given) in steering.json and rewrite the card; returns its path."""
    from wsteer.card import sweep_headline, write_model_card
    from wsteer.io import read_json
    from wsteer.records import read_steering_info, update_steering_info

    if not cfg.adapter:
        raise ConfigError("card needs an adapter", where="adapter", fix="pass ADAPTER")
    adapter = open_adapter(cfg.adapter).path  # a complete adapter directory, before anything is written
    if cfg.sweep:
        path = Path(cfg.sweep)
        path = path / "summary.json" if path.is_dir() else path
        summary = read_json(path)
        if not isinstance(summary, dict) or summary.get("stage") != "eval.sweep":
            raise DataError(
                "not an eval sweep summary", where=str(path), fix="pass the summary.json `eval sweep` wrote"
            )
        info = read_steering_info(adapter)
        if info is not None:
            update_steering_info(adapter, metrics={**info.metrics, "sweep": sweep_headline(summary)})
    return write_model_card(adapter, repo_id=cfg.repo_id)
