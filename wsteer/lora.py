"""LoRA arithmetic shared by training, adapters and eval.

The steering delta of one LoRA module is ``ΔW = s · B @ A`` with peft's scaling ``s = lora_alpha / r`` (or
``/ sqrt(r)`` with rsLoRA). Everything here scales or combines *deltas*: a weight ``w`` multiplies ``B`` (or the
scaling), never both factors — ``(-B) @ (-A)`` would be ``+ΔW``, the sign pitfall of peft issue 3004.

Two levels:
  * on a live peft model: :func:`scaled_adapter` (one α for the whole batch; α = 0 runs the base path) and
    :func:`per_row_adapter_scale` (one α per batch row, via forward hooks on each ``lora_B``);
  * on adapter files: :func:`read_adapter`, :func:`module_delta` / :func:`adapter_deltas`, :func:`combine_adapters`
    (exact, by rank concatenation) and :func:`write_adapter`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from wsteer.errors import ModelLoadError, WsteerError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<factor>[AB])(?:\.[^.]+)?\.weight$")


# --------------------------------------------------------------------------------------------- live models
def lora_layers(model) -> list[tuple[str, object]]:
    """(name, layer) for every peft LoRA layer in ``model``."""
    from peft.tuners.lora import LoraLayer

    return [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def _active_lora_layers(model) -> list[tuple[str, object, str]]:
    """(name, layer, adapter) for each LoRA layer's active adapters; raises on adapters without a linear delta."""
    found = []
    for name, layer in lora_layers(model):
        for adapter in layer.active_adapters:
            if adapter not in layer.lora_A:
                continue
            if layer.use_dora.get(adapter, False):
                raise WsteerError(
                    f"{name}: DoRA adapters do not scale linearly with α",
                    where="adapter",
                    fix="train with use_dora=false to steer by α",
                )
            found.append((name, layer, adapter))
    if not found:
        raise WsteerError(
            "the model has no active LoRA adapter to scale",
            where="adapter",
            fix="load the adapter with peft before steering",
        )
    return found


@contextlib.contextmanager
def scaled_adapter(model, alpha: float) -> Iterator[None]:
    """Run ``model`` with every active LoRA delta multiplied by ``alpha``; restores the scalings on exit.

    ``alpha == 0`` disables the adapter, so outputs are exactly the base model's.
    """
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise WsteerError(f"α must be a finite number, got {alpha}", where="alpha", fix="pass e.g. --alpha 1.5")
    if alpha == 0.0:
        with _base_path(model):
            yield
        return
    layers = _active_lora_layers(model)
    saved = [(layer, adapter, layer.scaling[adapter]) for _, layer, adapter in layers]
    try:
        for layer, adapter, scaling in saved:
            layer.scaling[adapter] = scaling * alpha
        yield
    finally:
        for layer, adapter, scaling in saved:
            layer.scaling[adapter] = scaling


@contextlib.contextmanager
def _base_path(model) -> Iterator[None]:
    """peft's ``disable_adapter()``, entered and left under ``torch.inference_mode``.

    Leaving it resets the LoRA parameters' ``requires_grad``; on a model dispatched with disk offload
    (:func:`wsteer.models.place_model`) accelerate's hooks leave inference-mode placeholders in those parameters,
    and torch refuses to flag an inference tensor outside inference mode. The flags set are the same either way.
    """
    import torch

    context = model.disable_adapter()
    with torch.inference_mode():
        context.__enter__()
    try:
        yield
    finally:
        with torch.inference_mode():
            context.__exit__(None, None, None)


@contextlib.contextmanager
def per_row_adapter_scale(model, alphas) -> Iterator[None]:
    """Multiply each batch row's LoRA delta by its own α: ``alphas`` is a [B] tensor or list.

    A forward hook on every active ``lora_B`` multiplies its output [B, ..., out] by ``alphas[b]``; since
    peft adds ``lora_B(lora_A(x)) * scaling`` to the base output, row b computes ``W x + α_b ΔW x``. Rows with
    α = 0 get exactly the base output. Hooks are removed on exit, also on errors.
    """
    import torch

    layers = _active_lora_layers(model)
    scale = torch.as_tensor(alphas, dtype=torch.float32).flatten()  # [B]
    if not torch.isfinite(scale).all():
        raise WsteerError(
            f"every α must be finite, got {scale.tolist()}", where="alpha", fix="pass finite coefficients"
        )

    def hook(module, inputs, output):
        if output.shape[0] != scale.shape[0]:
            raise RuntimeError(f"per-row α has {scale.shape[0]} rows but the batch has {output.shape[0]}")
        view = scale.to(device=output.device, dtype=output.dtype).view(-1, *([1] * (output.dim() - 1)))
        return output * view  # [B, ..., out] * [B, 1, ..., 1]

    handles = [layer.lora_B[adapter].register_forward_hook(hook) for _, layer, adapter in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------------------------- adapter files
@dataclass
class AdapterFiles:
    """A peft LoRA adapter as data: its config dict and its tensors (keys as peft saves them)."""

    config: dict
    tensors: dict = field(repr=False)
    path: Path | None = None

    def modules(self) -> list[str]:
        """Module paths (e.g. ``model.layers.0.self_attn.q_proj``) that carry a LoRA pair."""
        names = {m.group("module") for key in self.tensors if (m := _LORA_KEY.match(key))}
        return sorted(_strip_prefix(n) for n in names)

    def factors(self, module: str):
        """(A [r, in], B [out, r]) of one module."""
        key = _PEFT_PREFIX + module
        try:
            return self.tensors[f"{key}.lora_A.weight"], self.tensors[f"{key}.lora_B.weight"]
        except KeyError:
            raise WsteerError(
                f"adapter has no LoRA factors for module {module}",
                where=str(self.path or "adapter"),
                fix="check that the adapter targets this module",
            ) from None

    def scaling(self, module: str) -> float:
        """peft's scaling for ``module``: lora_alpha / r (or / sqrt(r) with rsLoRA), patterns applied."""
        from peft.utils.other import get_pattern_key

        cfg = self.config
        r = (cfg.get("rank_pattern") or {}).get(
            get_pattern_key((cfg.get("rank_pattern") or {}).keys(), module), cfg["r"]
        )
        alpha = (cfg.get("alpha_pattern") or {}).get(
            get_pattern_key((cfg.get("alpha_pattern") or {}).keys(), module), cfg["lora_alpha"]
        )
        return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def _strip_prefix(name: str) -> str:
    return name[len(_PEFT_PREFIX) :] if name.startswith(_PEFT_PREFIX) else name


def read_adapter(path: str | Path) -> AdapterFiles:
    """Read a peft LoRA adapter directory (safetensors only) and check that plain LoRA arithmetic applies."""
    from safetensors.torch import load_file

    path = Path(path)
    config_path, weights_path = path / ADAPTER_CONFIG, path / ADAPTER_WEIGHTS
    if not path.is_dir():
        raise ModelLoadError(
            f"adapter directory not found: {path}", where=str(path), fix="pass the directory written by `wsteer train`"
        )
    if not config_path.is_file():
        raise ModelLoadError(f"{ADAPTER_CONFIG} is missing", where=str(path), fix="pass a complete peft adapter")
    if not weights_path.is_file():
        pickled = (path / "adapter_model.bin").is_file()
        raise ModelLoadError(
            f"{ADAPTER_WEIGHTS} is missing" + (" (only a pickle .bin is present)" if pickled else ""),
            where=str(path),
            fix="save the adapter with safe_serialization=True",
        )
    try:
        config = json.loads(config_path.read_text())
    except ValueError as exc:
        raise ModelLoadError(
            f"malformed {ADAPTER_CONFIG}: {exc}", where=str(config_path), fix="regenerate the adapter"
        ) from None
    if config.get("peft_type", "LORA") != "LORA":
        raise ModelLoadError(
            f"not a LoRA adapter (peft_type={config.get('peft_type')})",
            where=str(config_path),
            fix="wsteer steers LoRA adapters only",
        )
    if config.get("use_dora"):
        raise ModelLoadError(
            "DoRA adapters have no linear delta to scale or combine",
            where=str(config_path),
            fix="train with use_dora=false",
        )
    try:
        tensors = load_file(weights_path)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for truncated files
        raise ModelLoadError(
            f"cannot read {ADAPTER_WEIGHTS}: {exc}",
            where=str(weights_path),
            fix="the file is truncated or corrupt; retrain or recopy it",
        ) from None
    extra = [k for k in tensors if not _LORA_KEY.match(k)]
    if extra:
        raise ModelLoadError(
            f"adapter holds non-LoRA tensors (e.g. {extra[0]}) such as modules_to_save",
            where=str(weights_path),
            fix="steer adapters without modules_to_save",
        )
    return AdapterFiles(config=config, tensors=tensors, path=path)


def module_delta(adapter: AdapterFiles, module: str):
    """ΔW = scaling · B @ A of one module as an fp32 tensor in the base weight's stored layout.

    That is [out, in], or [in, out] for ``fan_in_fan_out`` adapters (GPT-2 style Conv1D weights). Computing one
    module at a time keeps memory at one delta, which the streaming merge relies on.
    """
    a, b = adapter.factors(module)
    delta = (b.float() @ a.float()).mul_(adapter.scaling(module))  # [out, r] @ [r, in] -> [out, in], scaled in place
    return delta.T if adapter.config.get("fan_in_fan_out") else delta


def adapter_deltas(adapter: AdapterFiles) -> dict:
    """``{module: ΔW}`` for every module (see :func:`module_delta`); holds all deltas at once."""
    return {module: module_delta(adapter, module) for module in adapter.modules()}


def combine_adapters(parts: Sequence[tuple[AdapterFiles, float]]) -> AdapterFiles:
    """One exact adapter whose delta is ``sum_i w_i ΔW_i``, by rank concatenation.

    Per module: ``A = [A_1; A_2; …]`` and ``B = [w_1 s_1 B_1, w_2 s_2 B_2, …]``, so the combined scaling is 1
    (lora_alpha = r per module, rsLoRA off). The weight multiplies ``B`` only, so a negative weight negates the
    delta. Modules present in only some inputs get only those inputs' ranks.
    """
    import torch

    if not parts:
        raise WsteerError("nothing to combine", fix="pass at least one ADAPTER:WEIGHT")
    for adapter, weight in parts:
        if not math.isfinite(weight):
            raise WsteerError(
                f"weight {weight} is not finite",
                where=str(adapter.path or "adapter"),
                fix="use a finite weight such as +1.0 or -0.5",
            )
        if bool(adapter.config.get("fan_in_fan_out")) != bool(parts[0][0].config.get("fan_in_fan_out")):
            raise WsteerError(
                "adapters disagree on fan_in_fan_out",
                where=str(adapter.path),
                fix="combine adapters trained on the same base",
            )
    modules = sorted({m for adapter, _ in parts for m in adapter.modules()})
    tensors, ranks = {}, {}
    for module in modules:
        a_parts, b_parts, dtype = [], [], None
        for adapter, weight in parts:
            if module not in adapter.modules():
                continue
            a, b = adapter.factors(module)
            if a_parts and (a.shape[1] != a_parts[0].shape[1] or b.shape[0] != b_parts[0].shape[0]):
                raise WsteerError(
                    f"shape mismatch at {module}: {tuple(b.shape[:1]) + tuple(a.shape[1:])} vs "
                    f"{tuple(b_parts[0].shape[:1]) + tuple(a_parts[0].shape[1:])}",
                    where=str(adapter.path or "adapter"),
                    fix="combine adapters of the same base",
                )
            dtype = dtype or a.dtype
            a_parts.append(a.float())
            b_parts.append(weight * adapter.scaling(module) * b.float())
        tensors[f"{_PEFT_PREFIX}{module}.lora_A.weight"] = torch.cat(a_parts, 0).to(dtype).contiguous()
        tensors[f"{_PEFT_PREFIX}{module}.lora_B.weight"] = torch.cat(b_parts, 1).to(dtype).contiguous()
        ranks[module] = sum(a.shape[0] for a in a_parts)
    config = dict(parts[0][0].config)
    top_rank = max(ranks.values())
    config.update(
        r=top_rank,
        lora_alpha=top_rank,
        use_rslora=False,
        use_dora=False,
        rank_pattern={_pattern(m): r for m, r in ranks.items() if r != top_rank},
        alpha_pattern={_pattern(m): r for m, r in ranks.items() if r != top_rank},
        target_modules=sorted({m.rsplit(".", 1)[-1] for m in modules}),
        layers_to_transform=None,
        layers_pattern=None,
    )
    return AdapterFiles(config=config, tensors=tensors, path=None)


def _pattern(module: str) -> str:
    """A rank/alpha pattern key that peft's ``(.*\\.)?(KEY)$`` matching resolves to exactly this module."""
    return re.escape(module)


def write_adapter(adapter: AdapterFiles, out_dir: str | Path, extra_files: dict[str, str] | None = None) -> Path:
    """Write a peft adapter directory atomically (config + safetensors, plus optional extra text files)."""
    from safetensors.torch import save_file

    from wsteer.io import atomic_directory

    with atomic_directory(out_dir) as tmp:
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(adapter.config, indent=2, sort_keys=True) + "\n")
        save_file(
            {k: v.contiguous() for k, v in adapter.tensors.items()},
            str(tmp / ADAPTER_WEIGHTS),
            metadata={"format": "pt"},
        )
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return Path(out_dir)
