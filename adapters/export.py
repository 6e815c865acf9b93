"""Export: a plain peft adapter that runs at a chosen α with peft's default scaling, for tools that cannot scale.

peft, vLLM and lm-eval run a LoRA adapter at ``W + s · B @ A`` (``s = lora_alpha / r``), that is at α = +1.
:func:`export_adapter` writes a copy whose ``lora_B`` is multiplied by α (sign included; ``A``, ``r`` and
``lora_alpha`` unchanged, so peft's scaling applies as before): ``s · (α B) @ A = α ΔW``, exactly wsteer's
steering at α. Only ``B`` is scaled, never both factors (``(-B) @ (-A)`` would be ``+ΔW``).

``alpha`` is a number or ``calibrated`` (α⁺ from steering.json) or ``calibrated-`` (α⁻); ``merge`` accepts the
same values (:func:`resolve_alpha`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from wsteer.adapters.loading import open_adapter
from wsteer.adapters.steer import check_alpha

from wsteer.config import option
from wsteer.errors import ConfigError, WsteerError
from wsteer.lora import ADAPTER_WEIGHTS, AdapterFiles, write_adapter
from wsteer.records import SteeringInfo

CALIBRATED = {"calibrated": "plus", "calibrated-": "minus"}
_CALIBRATE_FIX = "run `wsteer adapters calibrate ADAPTER` first, or pass a number"


@dataclass(kw_only=True)  # keyword-only: the required out may follow adapter, which has a default
class ExportConfig:
    """``wsteer adapters export``: a plain peft adapter with α folded into its weights."""

    adapter: str | None = option(None, "Adapter directory to export (or give it as the positional ADAPTER).")
    alpha: float | str = option(  # a str is checked by resolve_alpha: 'calibrated', 'calibrated-' or a number
        "calibrated",
        "α to fold in: a number, 'calibrated' (steering.json's α⁺) or 'calibrated-' (α⁻).",
    )
    out: str = option(help="Directory for the exported adapter.")
    overwrite: bool = option(False, "Replace out if it exists.")


def resolve_alpha(value: float | str, info: SteeringInfo | None, where: str = "alpha") -> tuple[float, str]:
    """(α, how it was given) for a number or ``calibrated`` / ``calibrated-`` (read from ``info``).

    Raises when a calibrated α is asked for and steering.json has none, saying to run calibrate.
    """
    text = str(value).strip()
    side = CALIBRATED.get(text.lower())
    if side is None:
        try:
            number = float(text)
        except ValueError:
            raise WsteerError(
                f"α must be a number, 'calibrated' or 'calibrated-', got {text!r}",
                where=where,
                fix="pass e.g. alpha=1.5, alpha=calibrated (α⁺) or alpha=calibrated- (α⁻)",
            ) from None
        return check_alpha(number, where=where), text
    if info is None:
        raise WsteerError(
            "the adapter has no steering.json, so it has no calibrated α", where=where, fix="pass a number"
        )
    calibrated = info.calibrated_alpha or {}
    alpha = calibrated.get(side)
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise WsteerError(
            f"steering.json records no calibrated α{'⁺' if side == 'plus' else '⁻'} ({side})",
            where=where,
            fix=_CALIBRATE_FIX,
        )
    return float(alpha), text.lower()


def fold_alpha(files: AdapterFiles, alpha: float) -> AdapterFiles:
    """A copy of ``files`` whose every ``lora_B`` is multiplied by ``alpha`` (in fp32, cast back to its dtype)."""
    tensors = {}
    for key, tensor in files.tensors.items():
        if ".lora_B." in key:
            tensor = (tensor.float() * alpha).to(tensor.dtype)  # [out, r]: scaling B scales ΔW = s·B@A
        tensors[key] = tensor.contiguous()
    return AdapterFiles(config=dict(files.config), tensors=tensors, path=None)


def export_adapter(cfg: ExportConfig) -> tuple[Path, float]:
    """Write ``cfg.adapter`` with α folded into ``lora_B`` to ``cfg.out`` (atomically); returns (out, α).

    The export keeps the source's adapter_config (r, lora_alpha, the portable base id). When the source has a
    steering.json, the export gets one too, whose ``provenance.export`` records α and the source (its
    ``calibrated_alpha`` is cleared: α is already in the weights), and a model card saying so.
    """
    if not cfg.adapter or not cfg.out:
        missing = "adapter" if not cfg.adapter else "out"
        raise ConfigError(f"export needs {missing}", where=missing, fix="pass ADAPTER out=DIR")
    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise WsteerError(
            f"output directory already exists: {out}", where="out", fix="choose another out or pass overwrite=true"
        )
    source = open_adapter(cfg.adapter)
    if out.resolve() == source.path.resolve():
        raise WsteerError("out must not be the adapter directory", where="out", fix="export to a new directory")
    alpha, requested = resolve_alpha(cfg.alpha, source.info, where="alpha")
    folded = fold_alpha(source.files, alpha)
    write_adapter(folded, out, extra_files=_export_records(source, folded, alpha, requested))
    return out, alpha


def _export_records(source, folded: AdapterFiles, alpha: float, requested: str) -> dict[str, str]:
    """steering.json and README.md of the export (none for a source without steering.json)."""
    from wsteer.card import CARD_FILE, render_model_card
    from wsteer.io import sha256_file, to_json
    from wsteer.records import STEERING_FILE

    if source.info is None:
        return {}
    export = {
        "alpha": alpha,
        "requested": requested,
        "source": str(source.path.resolve()),
        "source_sha256": sha256_file(source.path / ADAPTER_WEIGHTS),
        "source_calibrated_alpha": source.info.calibrated_alpha,
    }
    provenance = {k: v for k, v in source.info.provenance.items() if k != "hub"}  # the source's repo, not ours
    info = dataclasses.replace(source.info, calibrated_alpha=None, provenance={**provenance, "export": export})
    return {
        STEERING_FILE: to_json(dataclasses.asdict(info), indent=2) + "\n",
        CARD_FILE: render_model_card(info, folded.config),
    }
