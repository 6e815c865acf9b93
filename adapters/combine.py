"""Combining: one exact adapter whose delta is ``Σ w_i · ΔW_i`` (e.g. ``honest:+1.0 authority:-0.5``).

The arithmetic is the core's :func:`wsteer.lora.combine_adapters` (rank concatenation, each weight on ``B``
only, so a negative weight negates that adapter's delta). This module adds what a command needs: parsing
``ADAPTER:WEIGHT``, refusing adapters of different bases, and writing ``steering.json`` provenance.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from wsteer.adapters.loading import AdapterSource, open_adapter

from wsteer.config import option, parse_finite_number
from wsteer.errors import WsteerError
from wsteer.lora import AdapterFiles
from wsteer.records import SteeringInfo


@dataclass(kw_only=True)  # keyword-only: the required out may follow parts, which has a default
class CombineConfig:
    """``wsteer adapters combine``: one exact adapter for Σ w_i·ΔW_i (rank concatenation)."""

    parts: list[str] = option(
        help="ADAPTER:WEIGHT for each part, e.g. [runs/honest/adapter:+1.0, runs/authority/adapter:-0.5] (or give "
        "them as positional words).",
        factory=list,
    )
    out: str = option(help="Directory for the combined adapter.")
    allow_unverified_base: bool = option(
        False, "Combine even when base hashes are missing and the recorded base names differ."
    )
    overwrite: bool = option(False, "Replace out if it exists.")


def parse_part(text: str) -> tuple[Path, float]:
    """``"path/to/adapter:-0.5"`` -> (Path, -0.5); the weight must be a finite number."""
    path, sep, weight = text.rpartition(":")
    if not sep or not path:
        raise WsteerError(
            f"{text!r} is not ADAPTER:WEIGHT",
            where=text,
            fix="write each part as ADAPTER:WEIGHT, e.g. runs/honest/adapter:+1.0",
        )
    fix = "write each part as ADAPTER:WEIGHT, e.g. runs/honest/adapter:-0.5"
    return Path(path), parse_finite_number(weight, "weight", text, fix)


def check_same_base(sources: Sequence[AdapterSource], allow_unverified: bool = False) -> None:
    """Refuse adapters trained on different bases.

    With every ``base_hash`` recorded, hashes must agree. Without them, the recorded base names must agree
    (unless ``allow_unverified``); the core still checks every module's shape when combining.
    """
    hashes = {s.base_hash for s in sources if s.base_hash}
    if len(hashes) > 1:
        described = ", ".join(f"{s.path} ({(s.base_hash or '?')[:12]}…)" for s in sources)
        raise WsteerError(
            f"the adapters were trained on different bases: {described}",
            where="combine",
            fix="combine adapters trained on the same base model",
        )
    if len(hashes) == 1 and all(s.base_hash for s in sources):
        return
    names = {_recorded_base(s) for s in sources}
    if len(names) > 1 and not allow_unverified:
        raise WsteerError(
            f"cannot verify that the adapters share a base: they record {sorted(map(str, names))}",
            where="combine",
            fix="combine adapters of one base, or pass allow_unverified_base=true if these names are the same model",
        )


def _recorded_base(source: AdapterSource) -> str | None:
    return (source.info.base_model if source.info else None) or source.files.config.get("base_model_name_or_path")


def combined_info(sources: Sequence[AdapterSource], weights: Sequence[float]) -> SteeringInfo | None:
    """steering.json for the combination: personas described with their weights, every part in provenance."""
    from wsteer.io import sha256_file
    from wsteer.lora import ADAPTER_WEIGHTS
    from wsteer.manifest import package_versions

    infos = [s.info for s in sources]
    if all(info is None for info in infos):
        return None

    def side(attr: str) -> str:
        return " + ".join(
            f"{w:+g}·[{getattr(info, attr) if info else s.path.name}]" for s, info, w in zip(sources, infos, weights)
        )

    known = [info for info in infos if info is not None]
    templates = {info.template for info in known}
    parts = [
        {
            "adapter": str(s.path.resolve()),
            "weight": w,
            "adapter_sha256": sha256_file(s.path / ADAPTER_WEIGHTS),
            "pos": info.pos if info else None,
            "neg": info.neg if info else None,
            "objective": info.objective if info else None,
            "base_hash": s.base_hash,
            "calibrated_alpha": info.calibrated_alpha if info else None,
        }
        for s, info, w in zip(sources, infos, weights)
    ]
    first = known[0]
    return dataclasses.replace(
        first,
        pos=side("pos"),
        neg=side("neg"),
        template=templates.pop() if len(templates) == 1 else "",
        objective="combined",
        base_model=_recorded_base(sources[0]) or first.base_model,
        base_hash=next((s.base_hash for s in sources if s.base_hash), None),
        data_sha256=None,
        train_config={},
        metrics={},
        calibrated_alpha=None,
        versions=package_versions(),
        provenance={"combine": parts, **({"base": first.provenance["base"]} if "base" in first.provenance else {})},
    )


def combine_sources(
    sources: Sequence[AdapterSource], weights: Sequence[float], allow_unverified_base: bool = False
) -> tuple[AdapterFiles, SteeringInfo | None]:
    """The exact adapter ``Σ w_i · ΔW_i`` of opened adapters, and its steering.json (None when no part has one).

    Refuses non-finite weights, adapters of different bases (see :func:`check_same_base`) and shape mismatches.
    """
    from wsteer.lora import combine_adapters

    if not sources:
        raise WsteerError("nothing to combine", where="combine", fix="pass at least one ADAPTER:WEIGHT")
    for source, weight in zip(sources, weights):
        if not math.isfinite(float(weight)):
            raise WsteerError(
                f"weight {weight} is not finite",
                where=f"{source.path}:{weight}",
                fix="use a finite weight such as -0.5",
            )
    weights = [float(w) for w in weights]
    check_same_base(sources, allow_unverified_base)
    combined = combine_adapters([(s.files, w) for s, w in zip(sources, weights)])
    # The first part's portable id (a hub id) when it has one; steering.json keeps the name wsteer loads it by.
    portable = sources[0].files.config.get("base_model_name_or_path")
    combined.config["base_model_name_or_path"] = portable or _recorded_base(sources[0])
    return combined, combined_info(sources, weights)


def write_combination(
    sources: Sequence[AdapterSource],
    weights: Sequence[float],
    out_dir: str | Path,
    allow_unverified_base: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write :func:`combine_sources`'s adapter to ``out_dir`` with steering.json and manifest.json, atomically."""
    from wsteer.card import CARD_FILE, render_model_card
    from wsteer.io import to_json
    from wsteer.lora import write_adapter
    from wsteer.manifest import build_manifest
    from wsteer.records import STEERING_FILE

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise WsteerError(
            f"output directory already exists: {out_dir}", where="out", fix="choose another out or pass overwrite=true"
        )
    combined, info = combine_sources(sources, weights, allow_unverified_base)
    weights = [float(w) for w in weights]
    extra = {
        "manifest.json": to_json(
            build_manifest(
                "adapters.combine",
                {"parts": [[str(s.path), w] for s, w in zip(sources, weights)], "out": str(out_dir)},
                inputs={f"part{i}": s.path for i, s in enumerate(sources)},
            ),
            indent=2,
        )
        + "\n"
    }
    if info is not None:
        extra[STEERING_FILE] = to_json(dataclasses.asdict(info), indent=2) + "\n"
        extra[CARD_FILE] = render_model_card(info, combined.config)
    return write_adapter(combined, out_dir, extra_files=extra)


def combine(
    parts: Sequence[tuple[str | Path, float]],
    out_dir: str | Path,
    allow_unverified_base: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the exact adapter ``Σ w_i · ΔW_i`` of ``parts`` [(adapter dir, weight), …] to ``out_dir``.

    Refuses adapters of different bases and shape mismatches; writes ``steering.json`` (personas with weights,
    each part in ``provenance.combine``; ``calibrated_alpha`` is cleared — recalibrate the combination) when any
    part has one, and ``manifest.json``. Nothing is written on error.
    """
    sources = [open_adapter(path) for path, _ in parts]
    return write_combination(sources, [w for _, w in parts], out_dir, allow_unverified_base, overwrite)
