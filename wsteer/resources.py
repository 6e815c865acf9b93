"""Files that ship inside the package: the run configs (``configs/``) and the pair library (``pairs/library/``).

Configs and docs name them by their checkout path (``configs/demo.yaml``, ``pairs/library/pairs.yaml``). In a
checkout that path exists as written; from an installed wheel, outside a checkout, the same path is found inside
the installed package (``wsteer.configs``, ``wsteer.pairs``). The lookup asks the import system where those
packages live without importing them, so the core does not depend on a stage.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The first folder of a checkout path -> the package it installs as.
SHIPPED_FOLDERS = {"configs": "wsteer.configs", "pairs": "wsteer.pairs"}


def package_dir(package: str) -> Path | None:
    """The folder that holds ``package`` (e.g. ``wsteer.configs``), or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_path(path: str | Path) -> Path:
    """``path`` as given when it exists, else the shipped file it names (``configs/x.yaml`` -> the installed
    ``wsteer/configs/x.yaml``), else ``path`` unchanged so the caller's own not-found error names what was asked."""
    candidate = Path(path)
    if candidate.exists() or candidate.is_absolute() or not candidate.parts:
        return candidate
    package = SHIPPED_FOLDERS.get(candidate.parts[0])
    folder = package_dir(package) if package else None
    if folder is not None and (folder.joinpath(*candidate.parts[1:])).exists():
        return folder.joinpath(*candidate.parts[1:])
    return candidate
