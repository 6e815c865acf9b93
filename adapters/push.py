"""Publishing an adapter to the Hugging Face Hub through ``huggingface_hub`` (``create_repo`` + ``upload_folder``).

What goes up: the peft files, the model card, steering.json and the calibration / training metrics — the files a
user of the repo needs (peft, vLLM, lm-eval read the first two; wsteer reads steering.json). Run records
(config.yaml, manifest.json), logs and contrastive components stay local. Before uploading, the card is
regenerated with the repo id in its usage snippets, and an adapter whose base is a directory on this machine is
refused: nobody downloading it could load its base (``base_id=`` records the hub id of that base instead).

The endpoint and token are huggingface_hub's own: ``HF_ENDPOINT``, ``HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsteer.adapters.loading import open_adapter

from wsteer.config import option
from wsteer.errors import ConfigError, WsteerError
from wsteer.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS

PUSHED_FILES = [ADAPTER_CONFIG, ADAPTER_WEIGHTS, "README.md", "steering.json", "calibration.json", "metrics.json"]


@dataclass(kw_only=True)  # keyword-only: the required repo_id may follow adapter, which has a default
class PushConfig:
    """``wsteer adapters push``: upload an adapter (peft files, model card, steering.json) to a Hub repo."""

    adapter: str | None = option(None, "Adapter directory to upload (or give it as the positional ADAPTER).")
    repo_id: str = option(help="Hub repo to upload to, e.g. 'me/honest-steering'; created if missing.")
    private: bool = option(False, "Create the repo as private (an existing repo keeps its visibility).")
    revision: str | None = option(None, "Branch to commit to; default: the repo's main branch.")
    commit_message: str = option("Upload wsteer steering adapter", "Commit message.")
    base_id: str | None = option(
        None,
        "Hub id of the base to record in adapter_config.json before uploading, for an adapter trained from a "
        "local directory (it must be the same weights).",
    )


def check_portable_base(config: dict, where: str) -> str:
    """The adapter's ``base_model_name_or_path``; raises when it is a path on this machine rather than a hub id."""
    from wsteer.hub import is_portable

    base = config.get("base_model_name_or_path")
    if not is_portable(base):
        raise WsteerError(
            f"the adapter's base_model_name_or_path is {base!r}, not a hub id: nobody who downloads it can load "
            "its base",
            where=where,
            fix="pass base_id=ORG/NAME (the hub id of the same base weights), or train from a hub id",
        )
    return str(base)


def prepare_for_push(adapter_dir: Path, repo_id: str, base_id: str | None) -> str:
    """Record ``base_id`` (when given) and the repo in the adapter, regenerate its card; returns the base id."""
    from wsteer.card import write_model_card
    from wsteer.hub import is_portable, set_adapter_base
    from wsteer.records import read_steering_info, update_steering_info

    if base_id is not None:
        if not is_portable(base_id):
            raise WsteerError(f"{base_id!r} is not a hub id", where="base_id", fix="pass ORG/NAME")
        set_adapter_base(adapter_dir, base_id)
    source = open_adapter(adapter_dir)
    base = check_portable_base(source.files.config, where=str(adapter_dir / ADAPTER_CONFIG))
    info = read_steering_info(adapter_dir)
    if info is not None:
        provenance = {**info.provenance, "hub": {"repo_id": repo_id}}
        if base_id is not None:
            provenance["base"] = {**provenance.get("base", {}), "id": base_id, "revision": None, "portable": True}
        update_steering_info(adapter_dir, provenance=provenance)
        write_model_card(adapter_dir, repo_id=repo_id)
    return base


def push_adapter(cfg: PushConfig) -> str:
    """Create ``cfg.repo_id`` (if missing) and upload the adapter's files; returns the commit URL."""
    from huggingface_hub import HfApi, constants

    if not cfg.adapter or not cfg.repo_id:
        missing = "adapter" if not cfg.adapter else "repo_id"
        raise ConfigError(f"push needs {missing}", where=missing, fix="pass ADAPTER repo_id=ORG/NAME")
    if constants.HF_HUB_OFFLINE:
        raise WsteerError(
            "HF_HUB_OFFLINE is set, which forbids uploading", where="HF_HUB_OFFLINE", fix="unset it to push"
        )
    adapter_dir = Path(cfg.adapter)
    open_adapter(adapter_dir)  # a complete, loadable LoRA adapter, before anything is changed or sent
    prepare_for_push(adapter_dir, cfg.repo_id, cfg.base_id)
    api = HfApi()
    try:
        api.create_repo(cfg.repo_id, private=cfg.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=str(adapter_dir),
            repo_id=cfg.repo_id,
            repo_type="model",
            revision=cfg.revision,
            allow_patterns=PUSHED_FILES,
            commit_message=cfg.commit_message,
        )
    except Exception as exc:  # noqa: BLE001 - HTTP, auth and validation errors: huggingface_hub raises many types
        raise WsteerError(
            f"upload to {api.endpoint} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})",
            where=f"repo_id={cfg.repo_id}",
            fix="check the repo id and that you are logged in (`hf auth login` or HF_TOKEN) with write access",
        ) from None
    return str(commit)
