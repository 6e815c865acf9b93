"""Run manifests: what produced an output, so it can be reproduced and trusted.

Every stage writes ``manifest.json`` (and its resolved ``config.yaml``) next to its outputs: the config, the seeds,
sha256 of every input, package versions, the command line and the time. Secrets never go in: the manifest holds
only what the caller passes, and configs hold the *names* of environment variables, not their values.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from wsteer.config import config_to_dict, config_to_yaml
from wsteer.io import atomic_write_text, sha256_path, write_json

TRACKED_PACKAGES = (
    "wsteer",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "bitsandbytes",
    "safetensors",
    "gguf",
    "numpy",
)


def save_config(cfg: Any, path: str | Path, header: str | None = None) -> Path:
    """Write the resolved config as YAML, atomically. Returns the path."""
    return atomic_write_text(path, config_to_yaml(cfg, header))


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour shapes a run (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The git commit of the wsteer checkout, when wsteer runs from one (None for an installed wheel)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def build_manifest(
    stage: str,
    config: Any = None,
    seeds: Mapping[str, int] | None = None,
    inputs: Mapping[str, str | Path] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """The manifest dict for one stage's run.

    Args:
        stage: e.g. "pairs.generate", "train".
        config: the resolved config dataclass (or dict).
        seeds: every seed the run used, by name.
        inputs: input files or directories by role; each is hashed (sha256).
        extra: anything else worth recording (counts, output paths).
    """
    return {
        "stage": stage,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "config": config_to_dict(config) if hasattr(config, "__dataclass_fields__") else config,
        "seeds": dict(seeds or {}),
        "inputs": {
            role: {"path": str(p), "sha256": sha256_path(p) if Path(p).exists() else None}
            for role, p in (inputs or {}).items()
        },
        "versions": package_versions(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        **dict(extra or {}),
    }


def write_run_record(
    out_dir: str | Path,
    stage: str,
    config: Any,
    seeds: Mapping[str, int] | None = None,
    inputs: Mapping[str, str | Path] | None = None,
    extra: Mapping[str, Any] | None = None,
    launch: str | None = None,
) -> Path:
    """Write ``config.yaml`` and ``manifest.json`` into ``out_dir``. Returns the manifest path."""
    out_dir = Path(out_dir)
    if hasattr(config, "__dataclass_fields__"):
        save_config(
            config,
            out_dir / "config.yaml",
            header=f"resolved config of {stage}" + (f"\nrelaunch: {launch}" if launch else ""),
        )
    return write_json(out_dir / "manifest.json", build_manifest(stage, config, seeds, inputs, extra))
