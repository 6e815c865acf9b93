"""Steering at runtime: run a model with an adapter's delta multiplied by any real α.

Sign convention: α > 0 moves toward steering.json's ``pos`` persona, α < 0 toward ``neg``; α = 0 is the base
model exactly (the adapter is bypassed, not multiplied by zero). Only the delta is scaled (peft's per-layer
``scaling``, via :func:`wsteer.lora.scaled_adapter`), never both LoRA factors, so a negative α negates ΔW.

    model, tokenizer = load_steerable("runs/honest/adapter")
    with steer(model, "default", alpha=-1.5):
        model.generate(...)

``adapter`` may also be an adapter directory: it is loaded for the block and removed afterwards, so the model
leaves the block computing what it computed before — also when the block raises.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.generation import SamplingConfig
from wsteer.lora import lora_layers, scaled_adapter
from wsteer.models import Placement

_TEMP_ADAPTER = "wsteer_steer"


@dataclass
class SteerConfig:
    """``wsteer adapters steer``: answer prompts with the adapter at one or more α (a quick look)."""

    adapter: str | None = option(None, "Adapter directory (or give it as the positional ADAPTER).")
    alphas: list[float] = option(
        help="Steering coefficients, one answer per α and prompt (0 = base; > 0 toward pos, < 0 toward neg).",
        factory=lambda: [-1.0, 0.0, 1.0],
    )
    prompts: list[str] = option(help='Prompts to answer, e.g. prompts=["Hi", "Tell me about the sea."].', factory=list)
    sampling: SamplingConfig = option(
        help="Decoding (temperature 0 = greedy).",
        factory=lambda: SamplingConfig(max_new_tokens=64, temperature=0.0),
    )
    seed: int = option(0, "Sampling seed (the same noise for every α).")
    base: str | None = option(None, "Base model; default: the one the adapter records (checked against its hash).")
    placement: Placement = option(help="Sharding (device_map, max_memory) and 4/8-bit loading.", factory=Placement)
    json: bool = option(False, "Print JSON lines instead of text.")


def check_alpha(alpha: float, where: str = "alpha") -> float:
    """``alpha`` as a float; NaN and ±inf are refused."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise WsteerError(f"α must be a number, got {alpha!r}", where=where, fix="pass e.g. 1.5 or -2") from None
    if not math.isfinite(value):
        raise WsteerError(f"α must be a finite number, got {value}", where=where, fix="pass e.g. 1.5 or -2")
    return value


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def _lora_grad_flags(model) -> list[tuple[object, bool]]:
    return [(p, p.requires_grad) for _, layer in lora_layers(model) for p in layer.parameters()]


@contextlib.contextmanager
def _active(model, adapter_name: str) -> Iterator[None]:
    """Make ``adapter_name`` the active adapter of a peft model for the block; restore the previous one after."""
    if adapter_name not in model.peft_config:
        raise WsteerError(
            f"the model has no adapter named {adapter_name!r} (it has {sorted(model.peft_config)})",
            where="adapter",
            fix="pass a loaded adapter's name or an adapter directory",
        )
    previous = model.active_adapter
    if previous == adapter_name:
        yield
        return
    flags = _lora_grad_flags(model)  # peft's set_adapter also flips requires_grad; put it back afterwards
    model.set_adapter(adapter_name)
    try:
        yield
    finally:
        model.set_adapter(previous)
        for param, flag in flags:
            param.requires_grad_(flag)


@contextlib.contextmanager
def steer(model, adapter: str | Path | None, alpha: float) -> Iterator[object]:
    """Run ``model`` with ``adapter``'s delta multiplied by ``alpha`` inside the block; yields the model to call.

    Args:
        model: a peft model with the adapter loaded, or a plain transformers model when ``adapter`` is a path.
        adapter: name of a loaded adapter (None: the active one), or an adapter directory to load for the block.
        alpha: any finite real; negative negates the delta, 0 is exactly the base model.

    On exit (also on exceptions) the scalings, the active adapter and the outputs are as before; a plain
    transformers model gets its own modules back (a peft model keeps empty LoRA wrappers where a temporary
    adapter added new ones, which pass the base output through).
    """
    alpha = check_alpha(alpha)
    loaded = sorted(model.peft_config) if _is_peft(model) else []
    if adapter is None or (isinstance(adapter, str) and adapter in loaded):
        if not loaded:
            raise WsteerError(
                "steering needs a peft model or an adapter directory",
                where="adapter",
                fix="load it with adapters.load_steerable, or pass the adapter's directory",
            )
        with _active(model, adapter or model.active_adapter), scaled_adapter(model, alpha):
            yield model
        return
    if not Path(adapter).is_dir():
        raise WsteerError(
            f"{adapter!r} is neither a loaded adapter (loaded: {loaded}) nor an adapter directory",
            where="adapter",
            fix="pass the name of a loaded adapter or an adapter directory",
        )
    with _loaded_for_block(model, Path(adapter)) as steered, scaled_adapter(steered, alpha):
        yield steered


@contextlib.contextmanager
def _loaded_for_block(model, path: Path) -> Iterator[object]:
    """Load the adapter at ``path`` onto ``model`` for the block, then take it off again."""
    from wsteer.adapters.loading import attach_adapter

    if _is_peft(model):
        if _TEMP_ADAPTER in model.peft_config:
            raise WsteerError(
                "steer() blocks that load adapters by path cannot be nested",
                where=str(path),
                fix="load the adapters once with attach_adapter and steer them by name",
            )
        attach_adapter(model, path, adapter_name=_TEMP_ADAPTER)
        try:
            with _active(model, _TEMP_ADAPTER):
                yield model
        finally:
            model.delete_adapter(_TEMP_ADAPTER)
        return
    steered = attach_adapter(model, path, adapter_name=_TEMP_ADAPTER)
    try:
        yield steered
    finally:
        steered.unload()  # swaps every LoRA layer back to its base layer, in place in ``model``


def steer_generate(
    adapter: str | Path,
    alphas: Sequence[float],
    prompts: Sequence[str],
    sampling=None,
    seed: int = 0,
    base: str | None = None,
    batch_size: int = 16,
    placement: Placement | None = None,
) -> list[dict]:
    """Answer each prompt at each α (a quick look at what steering does); returns one dict per answer.

    All (α, prompt) rows run in shared batches with a per-row α; with sampling, every α uses the same seed, so
    answers differ only where steering changed the distribution.
    """
    from wsteer.adapters.loading import load_steerable

    from wsteer.chat import build_messages
    from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
    from wsteer.lora import per_row_adapter_scale

    alphas = [check_alpha(a, where="alphas") for a in alphas]
    model, tokenizer = load_steerable(adapter, base=base, placement=placement)
    requests = [GenerationRequest(build_messages(p), seed=seed, tag=(a, p)) for a in alphas for p in prompts]
    answers = HFBackend(model, tokenizer, batch_size=batch_size).generate(
        requests,
        sampling or SamplingConfig(temperature=0.0),
        batch_hook=lambda batch: per_row_adapter_scale(model, [r.tag[0] for r in batch]),
    )
    return [
        {"alpha": g.request.tag[0], "prompt": g.request.tag[1], "text": g.text, "finish_reason": g.finish_reason}
        for g in answers
    ]
