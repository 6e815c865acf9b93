"""Finding an adapter's base model, checking that a base fits an adapter, and loading an adapter onto a base.

An adapter directory holds peft's files (``adapter_config.json``, ``adapter_model.safetensors``) and, when
``wsteer train`` wrote it, ``steering.json``. The base is, in order: an explicit ``base`` argument, steering.json's
``base_model``, then adapter_config.json's ``base_model_name_or_path``. When steering.json records ``base_hash``
(``wsteer.models.weights_fingerprint`` of the base checkpoint), a base with another fingerprint is refused; a plain
peft adapter without steering.json is still checked module by module for shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsteer.errors import ModelLoadError
from wsteer.hub import is_hub_id, is_portable
from wsteer.lora import AdapterFiles, read_adapter
from wsteer.models import MODEL_ALIASES, resolve_model_path, weights_fingerprint
from wsteer.records import SteeringInfo, read_steering_info


@dataclass
class AdapterSource:
    """An adapter read from disk with its steering.json (None for a plain peft adapter)."""

    path: Path
    files: AdapterFiles
    info: SteeringInfo | None

    @property
    def base_hash(self) -> str | None:
        """The recorded fingerprint of the base checkpoint, if any."""
        return self.info.base_hash if self.info else None


def open_adapter(path: str | Path) -> AdapterSource:
    """Read an adapter directory (safetensors only) and its steering.json."""
    path = Path(path)
    files = read_adapter(path)
    return AdapterSource(path=path, files=files, info=read_steering_info(path))


def base_name(adapter: AdapterSource, base: str | None = None) -> str:
    """The base model name for ``adapter``: ``base`` if given, else steering.json's, else adapter_config's.

    steering.json's name is skipped when it is a directory that does not exist here (the adapter was trained from
    a local checkpoint on another machine) and adapter_config.json records a hub id: ``base_hash`` still checks
    that the weights found under that id are the ones it was trained on.
    """
    recorded = adapter.info.base_model if adapter.info else None
    portable = adapter.files.config.get("base_model_name_or_path")
    if recorded and is_portable(portable) and _missing_directory(recorded):
        recorded = None
    for candidate in (base, recorded, portable):
        if candidate:
            return str(candidate)
    raise ModelLoadError(
        "the adapter does not say which base model it was trained on (no steering.json and no "
        "base_model_name_or_path in adapter_config.json)",
        where=str(adapter.path),
        fix="pass the base explicitly with base=PATH",
    )


def _missing_directory(name: str) -> bool:
    """True if ``name`` is a local path (not an alias, not a hub id) that does not exist on this machine."""
    return name not in MODEL_ALIASES and not is_hub_id(name) and not Path(name).expanduser().exists()


def resolve_base(adapter: AdapterSource, base: str | None = None) -> tuple[str, Path]:
    """(name, local checkpoint directory) of the adapter's base; checks its fingerprint against steering.json."""
    name = base_name(adapter, base)
    path = resolve_model_path(name)
    verify_base(adapter, path)
    return name, path


def verify_base(adapter: AdapterSource, base_path: str | Path) -> str | None:
    """Refuse a base whose weights fingerprint differs from steering.json's ``base_hash``; returns the fingerprint.

    Returns None (and checks nothing) when steering.json records no hash; shapes are still checked on load.
    """
    if not adapter.base_hash:
        return None
    base_path = Path(base_path)
    if not any(base_path.glob("*.safetensors")):
        raise ModelLoadError(
            f"base checkpoint {base_path} has no safetensors weights to fingerprint",
            where=str(base_path),
            fix="use a safetensors checkpoint of the base",
        )
    found = weights_fingerprint(base_path)
    if found != adapter.base_hash:
        trained_on = adapter.info.base_model if adapter.info else "?"
        raise ModelLoadError(
            f"wrong base: {base_path} has weights fingerprint {found[:12]}…, but the adapter was trained on "
            f"{trained_on!r} with fingerprint {adapter.base_hash[:12]}…",
            where=str(adapter.path / "steering.json"),
            fix=f"use the base the adapter was trained on ({trained_on})",
        )
    return found


def delta_shape(files: AdapterFiles, module: str) -> tuple[int, int]:
    """Shape of ΔW for ``module`` in the base weight's stored layout ([out, in]; [in, out] for fan_in_fan_out)."""
    a, b = files.factors(module)  # A [r, in], B [out, r]
    shape = (int(b.shape[0]), int(a.shape[1]))
    return shape[::-1] if files.config.get("fan_in_fan_out") else shape


def check_module_shapes(
    adapter: AdapterSource, base_shapes: dict[str, tuple[int, ...] | None], base_where: str
) -> None:
    """Raise if a targeted module is missing from the base or its weight shape differs from the adapter's ΔW.

    ``base_shapes`` maps module name -> stored weight shape (None: the base has no such module).
    """
    for module in adapter.files.modules():
        expected = delta_shape(adapter.files, module)
        found = base_shapes.get(module)
        if found is None:
            raise ModelLoadError(
                f"the base has no module {module}, which the adapter targets",
                where=base_where,
                fix=f"use the base the adapter was trained on (adapter: {adapter.path})",
            )
        if tuple(found) != expected:
            raise ModelLoadError(
                f"shape mismatch at {module}: the adapter's ΔW is {list(expected)} but the base weight is "
                f"{list(found)}",
                where=base_where,
                fix=f"use the base the adapter was trained on (adapter: {adapter.path})",
            )


def live_module_shapes(model, modules: list[str]) -> dict[str, tuple[int, ...] | None]:
    """Stored weight shape of each named module of a loaded model (quantised layers report their logical shape)."""
    shapes: dict[str, tuple[int, ...] | None] = {}
    for module in modules:
        try:
            layer = model.get_submodule(module)
        except AttributeError:
            shapes[module] = None
            continue
        layer = getattr(layer, "base_layer", layer)  # already wrapped by peft
        if hasattr(layer, "out_features") and hasattr(layer, "in_features"):  # nn.Linear and bitsandbytes layers
            shapes[module] = (int(layer.out_features), int(layer.in_features))
        elif hasattr(layer, "weight") and layer.weight is not None:  # e.g. transformers' Conv1D, [in, out]
            shapes[module] = tuple(int(n) for n in layer.weight.shape)
        else:
            shapes[module] = None
    return shapes


def _model_base_path(model) -> Path | None:
    """Local checkpoint directory a transformers model was loaded from, when known."""
    source = getattr(model, "wsteer_source", None) or {}
    candidate = source.get("path") or getattr(getattr(model, "config", None), "_name_or_path", None) or ""
    path = Path(candidate) if candidate else None
    return path if path is not None and path.is_dir() else None


def attach_adapter(model, adapter: AdapterSource | str | Path, adapter_name: str = "default"):
    """Load ``adapter`` onto a loaded base ``model`` (in place) and return the frozen peft model.

    Checks the base fingerprint when both steering.json's ``base_hash`` and the model's checkpoint directory are
    known, and every targeted module's shape always. ``model`` may be a plain transformers model or a peft
    model (the adapter is then added under ``adapter_name``, not activated).
    """
    from peft import PeftModel

    source = adapter if isinstance(adapter, AdapterSource) else open_adapter(adapter)
    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    base_path = _model_base_path(inner)
    if base_path is not None:
        verify_base(source, base_path)
    check_module_shapes(
        source, live_module_shapes(inner, source.files.modules()), base_where=str(base_path or "the loaded base model")
    )
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(source.path), adapter_name=adapter_name, is_trainable=False)
            steered = model
        else:
            steered = PeftModel.from_pretrained(model, str(source.path), adapter_name=adapter_name, is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(
            f"peft cannot load the adapter: {str(exc).splitlines()[0][:300]}",
            where=str(source.path),
            fix="check that the adapter matches the base model",
        ) from None
    steered.eval()
    steered.wsteer_adapter = {"path": str(source.path), "name": adapter_name}
    return steered


def load_steerable(
    adapter: str | Path,
    base: str | None = None,
    dtype: str = "float32",
    quantization: str = "none",
    device_map: str | None = None,
    placement=None,
):
    """Load an adapter's base (checked against steering.json) and the adapter on it.

    Returns ``(peft_model, tokenizer)``; steer it with :func:`wsteer.adapters.steer.steer`.

    Args:
        adapter: adapter directory.
        base: base model name/path; default: the one the adapter records.
        dtype: weight dtype of the base.
        quantization: "none", "4bit" or "8bit" (bitsandbytes), e.g. to run a QLoRA adapter as trained.
        device_map: passed to ``from_pretrained`` (None: CPU or this process's GPU).
        placement: a :class:`wsteer.models.Placement` (device_map, max_memory, offload, quantization); when
            given it replaces ``quantization`` and ``device_map``.
    """
    from wsteer.models import ModelConfig, load_model, load_tokenizer, place_model

    source = open_adapter(adapter)
    name, path = resolve_base(source, base)
    if placement is not None:
        model_config = placement.model_config(str(path), dtype, dispatch_later=True)
    else:
        model_config = ModelConfig(name=str(path), dtype=dtype, quantization=quantization, device_map=device_map)
    model = load_model(model_config)
    model.wsteer_source = {"name": name, "path": str(path)}
    steered = attach_adapter(model, source)
    if placement is not None:
        place_model(steered, placement)
    return steered, load_tokenizer(model_config)
