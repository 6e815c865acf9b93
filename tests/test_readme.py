"""The README cannot drift: its config reference is generated from the dataclasses, and CI runs its command (b)."""

import re
from pathlib import Path

from wsteer.pipeline.reference import README, readme_block, render_reference

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_readme_config_reference_is_generated_from_the_dataclasses():
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block, "README.md lacks the config-reference markers"
    assert block == render_reference(), (
        "README.md's config reference is stale: run `python -m wsteer.pipeline.reference --write`"
    )


def test_ci_runs_readme_command_b_verbatim_and_command_a_runs_the_demo():
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", readme)
    assert len(commands) >= 2, commands
    demo, tests = commands[0], commands[1]
    assert demo.endswith("&& wsteer demo") and tests.endswith("&& python -m pytest")
    ci_lines = (REPO_ROOT / ".ci/run").read_text().splitlines()
    assert tests in ci_lines
