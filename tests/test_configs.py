"""Every file in configs/ states its launch command in a header comment and loads into its dataclass."""

import shlex
from pathlib import Path

import pytest

from wsteer.cli import build_parser
from wsteer.cliargs import config_from_args

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
WSTEER_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml"))


def launch_command(path: Path) -> str:
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.lower().startswith("# launch:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path} has no '# Launch: ...' line in its header comment")


def wsteer_argv(command: str) -> list[str]:
    """The wsteer arguments of a launch command (`wsteer X …` or `accelerate launch … -m X …`)."""
    words = shlex.split(command)
    if words[0] == "wsteer":
        return words[1:]
    if words[:2] == ["accelerate", "launch"] and "-m" in words:
        module, *rest = words[words.index("-m") + 1 :]  # `-m wsteer.train …` is `wsteer train …`
        return [module.removeprefix("wsteer."), *rest]
    raise AssertionError(f"unrecognised launch command: {command}")


def test_configs_exist():
    assert WSTEER_CONFIGS, "configs/ holds no YAML files"


@pytest.mark.parametrize("path", WSTEER_CONFIGS, ids=lambda p: p.name)
def test_config_loads_as_its_launch_command_would(path, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)
    args = build_parser().parse_args(wsteer_argv(launch_command(path)))
    assert Path(args.config).resolve() == path.resolve(), "the launch command must name this file"
    config = config_from_args(args)
    assert config is not None
