"""The README and the manual cannot drift: the config reference is generated from the dataclasses, the benchmark
table is run_all's, CI runs README command (b), the README's links land on real pages and headings, and the
"Steer your own trait" commands run as printed."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.run_all import RESULTS_END, RESULTS_START
from wsteer.pipeline.reference import CONFIG_PAGE, generated_block, render_reference

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
README_MAX_LINES = 200


def test_config_reference_page_is_generated_from_the_dataclasses():
    block = generated_block(CONFIG_PAGE.read_text(encoding="utf-8"))
    assert block, "docs/reference/config.md lacks the config-reference markers"
    assert block == render_reference(), (
        "docs/reference/config.md's config reference is stale: run `python -m wsteer.pipeline.reference --write`"
    )


def test_ci_runs_readme_command_b_verbatim_and_command_a_runs_the_demo():
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", readme)
    assert len(commands) >= 2, commands
    demo, tests = commands[0], commands[1]
    assert demo.endswith("&& wsteer demo") and tests.endswith("&& python -m pytest")
    ci_lines = (REPO_ROOT / ".ci/run").read_text().splitlines()
    assert tests in ci_lines
    # after the tests, CI builds the manual strictly and checks the wheel outside the checkout
    after = ci_lines[ci_lines.index(tests) + 1 :]
    assert any("mkdocs build --strict" in line for line in after), after
    assert any(line.strip().startswith(".ci/wheel_check") for line in after), after


# --------------------------------------------------------------------------------------------- links
def heading_slug(heading: str) -> str:
    """The anchor GitHub and MkDocs' toc both give a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    """The heading anchors of a Markdown page (headings inside code fences are not headings)."""
    anchors, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            anchors.add(heading_slug(match.group(1)))
    return anchors


def local_links(text: str) -> list[str]:
    """Relative Markdown link targets in ``text`` (no URLs, no in-page anchors)."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:|#", t)]


def test_readme_is_short_and_its_links_land_on_manual_pages_and_headings():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = local_links(text)
    assert len({link.split("#")[0] for link in links}) >= 10, links  # the manual's pages, not one link
    for link in links:
        path, _, anchor = link.partition("#")
        assert (REPO_ROOT / path).is_file(), f"README links to {path}, which does not exist"
        if anchor:
            assert anchor in anchors_of(REPO_ROOT / path), f"README links to {link}: no such heading in {path}"


def test_heading_slug_matches_the_anchors_the_manual_uses():
    assert heading_slug("Speed: `bench/train_vs_trl.py`") == "speed-benchtrain_vs_trlpy"
    assert heading_slug("What `wsteer demo` does") == "what-wsteer-demo-does"
    assert heading_slug("torch: CPU build or CUDA build") == "torch-cpu-build-or-cuda-build"


def nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's nav (nested sections flattened)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def test_mkdocs_nav_names_existing_pages_and_the_readme_links_only_to_pages_in_it():
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = nav_pages(config["nav"])
    assert pages[0] == "index.md" and "reference/config.md" in pages and "benchmarks.md" in pages
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {missing}"
    linked = {link.split("#")[0] for link in local_links(README.read_text(encoding="utf-8"))}
    outside = [link for link in linked if link.startswith("docs/") and link.removeprefix("docs/") not in pages]
    assert not outside, f"README links to pages the manual's nav does not list: {outside}"


def test_the_benchmarks_page_holds_run_alls_latest_table():
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    assert RESULTS_START in page and RESULTS_END in page
    block = page[page.index(RESULTS_START) + len(RESULTS_START) : page.index(RESULTS_END)]
    assert block.strip() == (REPO_ROOT / "bench/results.md").read_text(encoding="utf-8").strip(), (
        "docs/benchmarks.md and bench/results.md differ: rerun `python bench/run_all.py --write-docs`"
    )


# --------------------------------------------------------------------------------------------- documented commands
STAGE_MODULES = {"wsteer.pairs": "pairs", "wsteer.train": "train", "wsteer.adapters": "adapters", "wsteer.eval": "eval"}


def documented_commands(text: str) -> list[list[str]]:
    """Every command in the ```bash blocks of a Markdown text, as words (continuations joined, comments dropped,
    `a && b` split into two)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            command: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word != "&&":
                    command.append(word)
                elif command:
                    found.append(command)
                    command = []
    return found


def wsteer_argv(command: list[str]) -> list[str] | None:
    """The ``wsteer`` CLI's arguments for ``wsteer …``, ``python -m wsteer.train …``, ``accelerate launch … -m
    wsteer.train …``; None for any other command."""
    if command[0] == "wsteer":
        return command[1:]
    if "-m" in command[:-1] and command[command.index("-m") + 1] in STAGE_MODULES:
        at = command.index("-m")
        return [STAGE_MODULES[command[at + 1]], *command[at + 2 :]]
    return None


def command_problem(argv: list[str]) -> str | None:
    """Why ``wsteer ARGV`` would be refused before it runs (a bad flag, an unknown config key), or None."""
    from wsteer.cli import build_parser
    from wsteer.cliargs import config_from_args
    from wsteer.errors import WsteerError

    try:
        args = build_parser().parse_args(argv)
        if hasattr(args, "config_class"):
            positional = next((name for name in ("adapter", "file", "parts") if hasattr(args, name)), None)
            config_from_args(args, positional)
    except SystemExit as exc:  # --help and --version exit 0
        return None if not exc.code else f"exit {exc.code}"
    except WsteerError as exc:
        return str(exc)
    return None


def test_every_documented_wsteer_command_parses_and_names_real_config_keys():
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    checked, problems = 0, []
    for page in pages:
        for command in documented_commands(page.read_text(encoding="utf-8")):
            argv = wsteer_argv(command)
            if argv is None:
                continue
            checked += 1
            if problem := command_problem(argv):
                problems.append(f"{page.relative_to(REPO_ROOT)}: {shlex.join(command)}\n    {problem}")
    assert checked >= 40, checked  # the README's and every stage page's commands, not a handful
    assert not problems, "documented commands the CLI refuses:\n" + "\n".join(problems)


def test_the_command_check_catches_an_old_flag_and_an_unknown_key():
    text = "```bash\nwsteer adapters merge runs/a --alpha 1.5  # old flag\n"
    text += "wsteer train epochz=2 && wsteer --version\n```\n"
    commands = [wsteer_argv(command) for command in documented_commands(text)]
    assert commands == [["adapters", "merge", "runs/a", "--alpha", "1.5"], ["train", "epochz=2"], ["--version"]]
    assert "--alpha" in command_problem(commands[0])
    assert "epochz" in command_problem(commands[1])
    assert command_problem(commands[2]) is None
    assert wsteer_argv(shlex.split("accelerate launch --num_processes 8 -m wsteer.train --config x.yaml")) == [
        "train",
        "--config",
        "x.yaml",
    ]


# --------------------------------------------------------------------------------------------- your own trait
# Tiny settings appended to each verb of the README's "Steer your own trait" block: a random 2-layer model cannot
# pass the content rules, learns nothing at the default rate and needs a tiny KL target (as in tests/test_demo.py).
TINY_OVERRIDES = {
    ("pairs", "lint"): [],
    ("pairs", "generate"): ["prompts.limit=6", "sampling.max_new_tokens=8", "batch_size=12"],
    ("pairs", "curate"): [
        "truncated.action=keep",
        "degenerate.enabled=false",
        "language.enabled=false",
        "refusal.action=keep",
        "length.enabled=false",
        "near_identical.enabled=false",
        "abandon_share=1.0",
    ],
    ("train",): ["epochs=1", "batch_size=2", "learning_rate=0.01"],
    ("adapters", "calibrate"): ["max_prompts=2", "max_new_tokens=4", "target_kl=0.001", "rel_tol=0.2"],
    ("eval", "sweep"): ["alphas=[-1,0,1]", "prompts.limit=2", "sampling.max_new_tokens=6", "leak_check_prompts=1"],
}
TAKES_MODEL = {("pairs", "generate"), ("train",)}  # the later verbs take the base from the adapter's steering.json


def own_trait_block(text: str) -> list[str]:
    """The command lines of the first bash block under the "Steer your own trait" heading."""
    section = text[text.index("Steer your own trait\n") :]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1).splitlines()


def verb_of(argv: list[str]) -> tuple[str, ...]:
    return tuple(argv[:2]) if argv[0] in ("pairs", "adapters", "eval") else (argv[0],)


def test_the_own_trait_commands_are_the_same_in_the_readme_and_the_manual():
    readme = own_trait_block(README.read_text(encoding="utf-8"))
    assert len(readme) == 5, readme
    assert own_trait_block((DOCS / "own-trait.md").read_text(encoding="utf-8")) == readme


def test_the_readme_own_trait_commands_run_as_printed_on_a_tiny_model(tmp_path, monkeypatch):
    from wsteer.cli import main
    from wsteer.testing import save_tiny_model

    model_dir = save_tiny_model(tmp_path / "tiny-model")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # relative paths (configs/train.yaml, runs/…) resolve from outside a checkout
    ran = []
    for line in own_trait_block(README.read_text(encoding="utf-8")):
        for command in line.split(" && "):
            argv = shlex.split(command)
            if argv[0] != "wsteer":  # step 1 writes the pair file with the shell
                subprocess.run(["bash", "-c", command], check=True, cwd=work)
                continue
            verb = verb_of(argv[1:])
            extra = TINY_OVERRIDES[verb] + ([f"model.name={model_dir}"] if verb in TAKES_MODEL else [])
            assert main([*argv[1:], *extra]) == 0, f"{command} failed"
            ran.append(verb)
    assert ran == [("pairs", "lint"), ("pairs", "generate"), ("pairs", "curate"), ("train",)] + [
        ("adapters", "calibrate"),
        ("eval", "sweep"),
    ]
    steering = json.loads((work / "runs/optimistic/adapter/steering.json").read_text())
    assert (steering["pos"], steering["neg"]) == ("optimistic", "pessimistic")
    assert steering["calibrated_alpha"]["plus"] > 0 > steering["calibrated_alpha"]["minus"]
    summary = json.loads((work / "runs/optimistic/eval/summary.json").read_text())
    arms = [arm["name"] for arm in summary["arms"]]
    assert arms == ["α=-1", "α=+0", "α=+1", "prompt:pos", "prompt:neg", "prompt:none"], arms
    assert summary["pair"]["pos"] == "optimistic" and summary["pair"]["neg"] == "pessimistic"
    assert (work / "runs/optimistic/eval/report.html").is_file()


@pytest.mark.parametrize("bad", ["pair.file=nope.yaml", "vocabulary.mode=bann"])
def test_a_broken_own_trait_command_fails_the_check(tmp_path, monkeypatch, bad):
    from wsteer.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_pair.yaml").write_text("pairs:\n  - id: optimistic\n    pos: optimistic\n    neg: pessimistic\n")
    generate = next(c for line in own_trait_block(README.read_text()) for c in line.split(" && ") if "generate" in c)
    assert main([*shlex.split(generate)[1:], bad]) != 0
