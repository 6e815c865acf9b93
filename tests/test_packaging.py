"""What the wheel ships, checked without building it (.ci/wheel_check builds and runs it): every package folder is
in pyproject's `packages`, every shipped data file is matched by its package-data globs, and the shipped configs and
pair library are found from outside a checkout."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from wsteer.pairs.personas import load_pairs, load_templates

from wsteer.resources import shipped_path

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (
    "configs/*.yaml",
    "configs/accelerate/*.yaml",
    "pairs/library/*.yaml",
    "pairs/prompts/tasks.jsonl",
    "pairs/probes/*.jsonl",
)


def setuptools_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_folder(package: str, package_dir: dict[str, str]) -> Path:
    """The checkout folder of ``package`` under setuptools' package-dir mapping (longest mapped prefix wins)."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return REPO_ROOT / package_dir[prefix] / Path(*parts[cut:])
    return REPO_ROOT / Path(*parts)


def test_every_python_package_folder_is_listed_in_packages():
    config = setuptools_config()
    listed = set(config["packages"])
    for root_package, folder in config["package-dir"].items():
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO_ROOT / folder)
            package = ".".join([root_package, *relative.parts])
            if "__pycache__" not in relative.parts:
                assert package in listed, f"{init.parent} holds a package but {package} is not in pyproject's packages"


def test_every_shipped_data_file_is_matched_by_its_packages_data_globs():
    config = setuptools_config()
    folders = {package: package_folder(package, config["package-dir"]) for package in config["packages"]}
    files = sorted(path for pattern in SHIPPED for path in REPO_ROOT.glob(pattern))
    assert len(files) >= 10, files  # the configs, the accelerate configs, the library, the prompts
    for path in files:
        package = next((name for name, folder in folders.items() if folder == path.parent), None)
        assert package, f"{path.parent} is no package in pyproject's packages, so {path.name} would not ship"
        globs = config["package-data"].get(package, [])
        assert any(fnmatch.fnmatch(path.name, glob) for glob in globs), f"{path} matches no package-data of {package}"


def test_shipped_paths_resolve_from_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for pattern in SHIPPED:
        for path in REPO_ROOT.glob(pattern):
            relative = path.relative_to(REPO_ROOT).as_posix()
            found = shipped_path(relative)
            assert found.is_file() and found.read_bytes() == path.read_bytes(), relative
    assert shipped_path("configs/nope.yaml") == Path("configs/nope.yaml")  # the caller's not-found error names it
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/demo.yaml").write_text("run_dir: mine\n")
    assert shipped_path("configs/demo.yaml") == Path("configs/demo.yaml")  # a file where you are wins


def test_the_pair_library_loads_by_its_checkout_path_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pairs = load_pairs("pairs/library/pairs.yaml")
    templates = load_templates("pairs/library/templates.yaml")
    assert "honest" in {pair.id for pair in pairs}
    assert len(pairs) == len(load_pairs(REPO_ROOT / "pairs/library/pairs.yaml"))
    assert {"acting-adj", "acting-clause"} <= {template.id for template in templates}
