"""Merging: write ``W' = W + α · ΔW`` for every targeted weight as a new, ordinary checkpoint.

The base checkpoint is streamed shard by shard with ``safetensors.safe_open``: untargeted tensors are passed
through as the memory-mapped tensors safetensors returns (their pages are read once, while the shard is
written), and each targeted tensor is read through its own short-lived handle, merged in fp32 and cast back to
the base dtype, so its original pages are released as soon as the merged copy exists. Peak memory is therefore
about one shard plus the adapter, not the whole model; ``bench/merge_memory.py`` measures it.

ΔW comes from the core (:func:`wsteer.lora.module_delta`, one module at a time). Tied weights are untied when the
adapter targets one of them (e.g. ``lm_head`` tied to ``embed_tokens``): the steered copy is written as its own
tensor and ``tie_word_embeddings`` is switched off, because peft applies the delta to the targeted module only.
An adapter trained on a 4-/8-bit base merges the same way into the full-precision checkpoint of that base.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from wsteer.adapters.export import resolve_alpha
from wsteer.adapters.loading import AdapterSource, check_module_shapes, open_adapter

from wsteer.config import option
from wsteer.errors import ModelLoadError, WsteerError
from wsteer.lora import ADAPTER_WEIGHTS, module_delta

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# Weight files and records of the base that must not be copied into the merged checkpoint.
_NOT_COPIED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx")
_NOT_COPIED_NAMES = {
    INDEX_FILE,
    "pytorch_model.bin.index.json",
    "config.json",
    "steering.json",
    "manifest.json",
    "config.yaml",
    "wsteer_cache.json",
}
_FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}


@dataclass(kw_only=True)  # keyword-only: the required alpha and out may follow adapter, which has a default
class MergeConfig:
    """``wsteer adapters merge``: write base + α·ΔW as a new checkpoint, streamed shard by shard."""

    adapter: str | None = option(None, "Adapter directory (or give it as the positional ADAPTER).")
    alpha: float | str = option(  # a str is checked by resolve_alpha: 'calibrated', 'calibrated-' or a number
        help="Steering coefficient to bake in: any finite real, or 'calibrated' / 'calibrated-' (steering.json's "
        "α⁺ / α⁻, written by `wsteer adapters calibrate`)."
    )
    out: str = option(help="New checkpoint directory.")
    base: str | None = option(
        None, "Base checkpoint; default: the one the adapter records (checked against steering.json's base_hash)."
    )
    overwrite: bool = option(False, "Replace out if it exists.")


@dataclass
class TensorInfo:
    """Where a tensor of the base checkpoint lives and what it is."""

    shard: str
    dtype: str
    shape: tuple[int, ...]


@dataclass
class MergePlan:
    """What the merge will write; everything here is checked before a single byte is written."""

    base_name: str
    base_path: Path
    shards: list[str]
    sharded: bool
    tensors: dict[str, TensorInfo]
    targets: dict[str, str] = field(default_factory=dict)  # stored tensor name -> adapter module
    added: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # new name -> (source tensor, module)
    untied: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class MergeResult:
    """Where the merged checkpoint went and what changed."""

    out_dir: Path
    alpha: float
    merged_tensors: int
    untied: list[tuple[str, str]]
    largest_shard_bytes: int


def read_checkpoint_layout(base_path: Path) -> tuple[list[str], bool, dict[str, TensorInfo]]:
    """(shard file names, sharded?, tensor name -> info) of a safetensors checkpoint, from headers only."""
    from safetensors import safe_open

    index = base_path / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"malformed {INDEX_FILE}: {exc}", where=str(index), fix="re-save the base checkpoint"
            ) from None
        shards, sharded = sorted(set(weight_map.values())), True
    elif (base_path / SINGLE_FILE).is_file():
        shards, sharded = [SINGLE_FILE], False
    else:
        found = sorted(p.name for p in base_path.glob("*.safetensors"))
        pickled = any(base_path.glob("*.bin"))
        raise ModelLoadError(
            f"the base checkpoint has no {SINGLE_FILE} or {INDEX_FILE}"
            + (f" (found {found})" if found else "")
            + (" — only pickle .bin weights, which wsteer does not load" if pickled and not found else ""),
            where=str(base_path),
            fix="save the base with save_pretrained(..., safe_serialization=True)",
        )
    tensors: dict[str, TensorInfo] = {}
    for shard in shards:
        path = base_path / shard
        if not path.is_file():
            raise ModelLoadError(
                f"shard {shard} named in {INDEX_FILE} is missing",
                where=str(path),
                fix="recopy the complete base checkpoint",
            )
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    piece = handle.get_slice(key)
                    tensors[key] = TensorInfo(shard, piece.get_dtype(), tuple(piece.get_shape()))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
            raise ModelLoadError(
                f"cannot read {shard}: {exc}",
                where=str(path),
                fix="the shard is truncated or corrupt; recopy the base checkpoint",
            ) from None
    return shards, sharded, tensors


def tied_weights(config_path: Path) -> dict[str, str]:
    """{tied parameter: source parameter} for the architecture in ``config.json`` (empty if nothing is tied).

    Asks transformers itself, on an empty (meta-device) model, so every architecture's own tying rules apply.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_path.parent)
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, ImportError) as exc:
        raise ModelLoadError(
            f"transformers cannot build this architecture: {str(exc).splitlines()[0][:200]}",
            where=str(config_path),
            fix="merge needs a causal LM that transformers knows",
        ) from None
    return dict(skeleton.get_expanded_tied_weights_keys(all_submodels=True))


def plan_merge(adapter: AdapterSource, base: str | None = None) -> MergePlan:
    """Resolve and check the base, and map every adapter module to the tensor it changes. Writes nothing."""
    from wsteer.adapters.loading import resolve_base

    name, base_path = resolve_base(adapter, base)
    config_path = base_path / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("quantization_config"):
        raise ModelLoadError(
            "the base checkpoint is quantised; merging needs its full-precision weights",
            where=str(config_path),
            fix="pass the full-precision checkpoint as base=PATH (a 4-/8-bit-trained adapter merges into it)",
        )
    shards, sharded, tensors = read_checkpoint_layout(base_path)
    plan = MergePlan(name, base_path, shards, sharded, tensors)
    tied = tied_weights(config_path)
    partner = {**tied, **{source: target for target, source in tied.items()}}
    shapes: dict[str, tuple[int, ...] | None] = {}
    for module in adapter.files.modules():
        param = f"{module}.weight"
        stored = param if param in tensors else partner.get(param)
        if stored not in tensors:
            shapes[module] = None
            continue
        info = tensors[stored]
        shapes[module] = info.shape
        if info.dtype not in _FLOAT_DTYPES:
            raise ModelLoadError(
                f"{stored} is stored as {info.dtype}, not a float type",
                where=str(base_path),
                fix="merge into the full-precision checkpoint of the base",
            )
        if param in partner:  # tied: keep the partner as it was and write the steered weight separately
            other = partner[param]
            plan.untied.append((param, other))
            if param not in tensors:
                plan.added[param] = (other, module)
            else:
                plan.targets[param] = module
            if other not in tensors:
                plan.added[other] = (param, None)
        else:
            plan.targets[param] = module
    check_module_shapes(adapter, shapes, base_where=str(base_path))
    return plan


def merge_adapter(
    adapter: str | Path,
    alpha: float | str,
    out_dir: str | Path,
    base: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MergeResult:
    """Write the base checkpoint plus ``alpha`` · ΔW as a new checkpoint directory in ``out_dir``.

    Keeps the base dtype and sharding (with its index), copies config, tokenizer and generation config, and
    writes ``steering.json`` (with ``provenance.merge``: α, the source adapter and the base) and
    ``manifest.json``. The directory appears atomically; on any error nothing is written.

    Args:
        adapter: adapter directory.
        alpha: the steering coefficient baked in; any finite real (0 writes the base unchanged), or
            ``"calibrated"`` / ``"calibrated-"`` for steering.json's α⁺ / α⁻.
        out_dir: the new checkpoint directory.
        base: base model name/path; default: the one the adapter records.
        overwrite: replace ``out_dir`` if it exists.
        progress: show a progress bar over shards.
    """
    from tqdm.auto import tqdm

    from wsteer.io import atomic_directory

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise WsteerError(
            f"output directory already exists: {out_dir}", where="out", fix="choose another out or pass overwrite=true"
        )
    source = open_adapter(adapter)
    alpha, _ = resolve_alpha(alpha, source.info, where="alpha")
    plan = plan_merge(source, base)
    if out_dir.resolve() in (plan.base_path.resolve(), source.path.resolve()):
        raise WsteerError(
            "out must not be the base or the adapter directory",
            where="out",
            fix="write the merged checkpoint to a new directory",
        )
    sizes: dict[str, int] = {}
    with atomic_directory(out_dir) as tmp:
        for shard in tqdm(plan.shards, desc="merge", unit="shard", disable=not progress):
            sizes[shard] = _write_shard(plan, source, alpha, shard, tmp / shard)
        if plan.sharded:
            _write_index(plan, sizes, tmp)
        _copy_side_files(plan, tmp)
        _write_records(plan, source, alpha, tmp, out_dir)
    return MergeResult(
        out_dir,
        alpha,
        len(plan.targets) + sum(1 for _, m in plan.added.values() if m),
        plan.untied,
        max(sizes.values()),
    )


def _merged(tensor, module: str, source: AdapterSource, alpha: float):
    """``tensor + alpha · ΔW(module)`` computed in fp32, cast back to the tensor's dtype.

    Works in the delta's own buffer (scale, then add the weight in place): one fp32 allocation per weight, so
    the allocator is not left with holes of every size the temporaries would have had.
    """
    if alpha == 0.0:
        return tensor.clone()
    merged = module_delta(source.files, module)  # fp32, in the stored layout
    merged.mul_(alpha).add_(tensor)  # α·ΔW + W, elementwise the same as W + α·ΔW
    return merged.to(tensor.dtype).contiguous()


def _write_shard(plan: MergePlan, source: AdapterSource, alpha: float, shard: str, out_path: Path) -> int:
    """Write one output shard; returns the bytes of tensor data written."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = str(plan.base_path / shard)
    tensors = {}
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {"format": "pt"}
        for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
            if key in plan.targets:
                continue
            tensors[key] = handle.get_tensor(key)  # memory-mapped; read when the shard is written
    for key, module in plan.targets.items():
        if plan.tensors[key].shard == shard:
            with safe_open(path, framework="pt") as own:  # own mapping: released once the merged copy exists
                tensors[key] = _merged(own.get_tensor(key), module, source, alpha)
    for key, (origin, module) in plan.added.items():
        if plan.tensors[origin].shard == shard:
            with safe_open(path, framework="pt") as own:
                original = own.get_tensor(origin)
                tensors[key] = _merged(original, module, source, alpha) if module else original.clone()
    save_file(tensors, str(out_path), metadata=metadata)
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _write_index(plan: MergePlan, sizes: dict[str, int], tmp: Path) -> None:
    from wsteer.io import write_json

    original = json.loads((plan.base_path / INDEX_FILE).read_text())
    weight_map = {key: info.shard for key, info in plan.tensors.items()}
    for key, (origin, _) in plan.added.items():
        weight_map[key] = plan.tensors[origin].shard
    metadata = {**original.get("metadata", {}), "total_size": sum(sizes.values())}
    write_json(tmp / INDEX_FILE, {"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))})


def _copy_side_files(plan: MergePlan, tmp: Path) -> None:
    """Copy config (untied if needed), tokenizer, generation config and other small top-level files."""
    from wsteer.io import write_json

    for item in sorted(plan.base_path.iterdir()):
        if not item.is_file() or item.name in _NOT_COPIED_NAMES or item.name.endswith(_NOT_COPIED_SUFFIXES):
            continue
        if item.name.startswith("."):
            continue
        shutil.copy2(item, tmp / item.name)
    config = json.loads((plan.base_path / "config.json").read_text())
    if plan.untied:
        config["tie_word_embeddings"] = False
        for value in config.values():  # composite configs keep the flag on their text sub-config too
            if isinstance(value, dict) and "tie_word_embeddings" in value:
                value["tie_word_embeddings"] = False
    write_json(tmp / "config.json", config)


def _write_records(plan: MergePlan, source: AdapterSource, alpha: float, tmp: Path, out_dir: Path) -> None:
    """steering.json (the adapter's, plus merge provenance) and manifest.json."""
    from wsteer.io import sha256_file, write_json
    from wsteer.manifest import build_manifest
    from wsteer.models import weights_fingerprint
    from wsteer.records import write_steering_info

    merge = {
        "alpha": alpha,
        "adapter": str(source.path.resolve()),
        "adapter_sha256": sha256_file(source.path / ADAPTER_WEIGHTS),
        "base_model": plan.base_name,
        "base_path": str(plan.base_path),
        "base_hash": weights_fingerprint(plan.base_path),
        "untied": [list(pair) for pair in plan.untied],
        "note": "this checkpoint is the base with the adapter's delta fixed at alpha; steer further by "
        "merging again from the base, not from this checkpoint",
    }
    if source.info is not None:
        provenance = {**source.info.provenance, "merge": merge}
        write_steering_info(tmp, dataclasses.replace(source.info, provenance=provenance))
    config = {"adapter": str(source.path), "alpha": alpha, "base": plan.base_name, "out": str(out_dir)}
    write_json(
        tmp / "manifest.json",
        build_manifest("adapters.merge", config, inputs={"adapter": source.path}, extra={"merge": merge}),
    )
