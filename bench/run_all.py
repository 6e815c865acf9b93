"""Run every bench, each in its own process, and write the results table: bench/results.md and bench/results.json.

    python bench/run_all.py                      # full settings: the manual's figures (long; use a quiet machine)
    python bench/run_all.py --write-docs         # ... and put the table between the markers in docs/benchmarks.md
    python bench/run_all.py --quick              # small settings, one torch thread, ~1–2 min a bench: a smoke run
    python bench/run_all.py --only generation,sweep --threads 1

Each bench runs as ``python bench/NAME.py ARGS --json FILE`` in a fresh process (so its peak RSS and threads are its
own) and writes headline rows (see bench/common.py); the table has one line per row: bench | measure | ours |
baseline | ratio (ours / baseline) | goal | command, and under it one line with the machine, date, torch threads and
the load average when each bench started. A bench that fails is a "failed" row with its exit code and the last line
of its stderr; the others still run and run_all exits 1. Each bench's stdout and stderr are kept in
``OUT_DIR/logs/``. ``--write-docs`` writes docs/benchmarks.md only when every bench succeeded and never with
``--quick``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from bench.common import machine_context  # noqa: E402
from wsteer.errors import WsteerError  # noqa: E402
from wsteer.io import atomic_write_text, write_json  # noqa: E402

RESULTS_START = "<!-- bench-results:start -->"
RESULTS_END = "<!-- bench-results:end -->"
RESULTS_PAGE = Path("docs") / "benchmarks.md"  # relative to the repository root: the manual's benchmarks page
QUICK_THREADS = 1  # --quick is a smoke run on a possibly shared machine: one torch thread unless --threads says


@dataclass(frozen=True)
class Bench:
    """A bench script and the arguments of its quick run (its full run is its defaults)."""

    name: str
    script: str  # relative to the repository root
    quick: tuple[str, ...] = ()
    takes_threads: bool = True  # accepts --threads N


BENCHES: tuple[Bench, ...] = (
    Bench("generation", "bench/generation.py", ("--rows", "16", "--max-new-tokens", "16")),  # batch 16, the goal's
    Bench("sweep", "bench/sweep.py", ("--prompts", "4", "--max-new-tokens", "16")),
    Bench("merge_memory", "bench/merge_memory.py", (), takes_threads=False),  # its defaults take about a minute
    Bench("train_vs_trl", "bench/train_vs_trl.py", ("--arms", "trl,dpo", "--epochs", "1", "--limit-pairs", "12")),
)


@dataclass
class Outcome:
    """What one bench run gave: its --json result, or why there is none."""

    bench: Bench
    command: str  # the command line that reproduces it (without --json)
    exit_code: int
    seconds: float
    result: dict | None = None
    error: str | None = None  # the last line of stderr, or why the result is unusable
    log_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------------------------- running
def bench_arguments(bench: Bench, quick: bool, threads: int | None) -> list[str]:
    """The bench's arguments: its quick settings with --quick (none otherwise), then --threads where it takes one."""
    arguments = list(bench.quick) if quick else []
    if threads is None and quick:
        threads = QUICK_THREADS
    if threads is not None and bench.takes_threads:
        arguments += ["--threads", str(threads)]
    return arguments


def last_line(text: str) -> str:
    """The last non-empty line (progress bars' carriage returns count as line ends)."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return lines[-1] if lines else ""


def run_bench(bench: Bench, arguments: list[str], repo_root: Path, log_dir: Path, echo: bool = False) -> Outcome:
    """Run ``python SCRIPT ARGS --json FILE`` in a fresh process; keep its stdout/stderr in ``log_dir``."""
    command = shlex.join(["python", bench.script, *arguments])
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / f"{bench.name}.stdout", log_dir / f"{bench.name}.stderr"
    env = {**os.environ, "PYTHONPATH": str(repo_root), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"bench-{bench.name}-") as tmp:
        json_path = Path(tmp) / "result.json"
        argv = [sys.executable, str(repo_root / bench.script), *arguments, "--json", str(json_path)]
        with stdout_path.open("w") as out, stderr_path.open("w") as err:
            process = subprocess.Popen(argv, cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
            for line in process.stdout:  # tee: the log always, the terminal with --verbose
                out.write(line)
                if echo:
                    print(f"    {line}", end="", flush=True)
            exit_code = process.wait()
        seconds = time.perf_counter() - started
        outcome = Outcome(bench, command, exit_code, seconds, log_dir=log_dir)
        if exit_code != 0:
            outcome.error = last_line(stderr_path.read_text(errors="replace")) or "(no stderr)"
        elif not json_path.is_file():
            outcome.error = "exited 0 but wrote no --json result"
        else:
            try:
                outcome.result = json.loads(json_path.read_text())
            except json.JSONDecodeError as exc:
                outcome.error = f"its --json result is not JSON: {exc}"
            else:
                if not isinstance(outcome.result, dict) or not isinstance(outcome.result.get("headline"), list):
                    outcome.error = "its --json result has no 'headline' list"
    return outcome


# --------------------------------------------------------------------------------------------- the table
def headline_of(outcome: Outcome) -> list[dict[str, Any]]:
    """The bench's headline rows, or one 'failed' row with its exit code and last stderr line."""
    if outcome.ok:
        return outcome.result["headline"]
    return [
        {
            "bench": outcome.bench.name,
            "measure": "failed",
            "ours": f"exit code {outcome.exit_code}: {outcome.error}",
            "baseline": None,
            "ratio": None,
            "goal": None,
            "met": None,
            "command": outcome.command,
            "failed": True,
        }
    ]


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    text = "—" if value is None or value == "" else str(value)
    text = " ".join(text.split())
    if len(text) > 200:
        text = text[:197] + "…"
    return text.replace("|", "\\|")


def _ratio_cell(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.0f}" if abs(ratio) >= 100 else f"{ratio:.2f}"


def _goal_cell(row: dict) -> str:
    if not row.get("goal"):
        return "—"
    met = row.get("met")
    verdict = "" if met is None else (" (met)" if met else " (**not met**)")
    return _cell(row["goal"]) + verdict


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results table: bench | measure | ours | baseline | ratio | goal | command."""
    lines = [
        "| bench | measure | ours | baseline | ratio (ours / baseline) | goal | command |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        measure = f"**failed** ({_cell(row['ours'])})" if row.get("failed") else _cell(row["measure"])
        ours = "—" if row.get("failed") else _cell(row["ours"])
        command = "`" + row["command"].replace("`", "'") + "`"
        lines.append(
            f"| {_cell(row['bench'])} | {measure} | {ours} | {_cell(row['baseline'])} | {_ratio_cell(row['ratio'])} "
            f"| {_goal_cell(row)} | {command.replace('|', chr(92) + '|')} |"
        )
    return "\n".join(lines)


def machine_line(machine: dict[str, Any], outcomes: list[Outcome], quick: bool) -> str:
    """One line: machine, date, torch threads and load average at each bench's start, and the settings."""
    benches = [
        (o.bench.name, o.result["machine"]) for o in outcomes if o.ok and isinstance(o.result.get("machine"), dict)
    ]
    threads = ", ".join(f"{name} {context.get('torch_threads')}" for name, context in benches) or "—"
    loads = ", ".join(f"{name} {context['load_average'][0]:.2f}" for name, context in benches) or "—"
    settings = (
        "quick settings (small sizes: a smoke run, noisy figures, not for quoting)"
        if quick
        else "full settings (each bench's defaults)"
    )
    return (
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['platform']}, torch {machine['torch']}; "
        f"date {machine['date']}; torch threads: {threads}; load average (1 min) at each bench's start: {loads} "
        f"(above the CPU count means contended); {settings}."
    )


def results_markdown(machine: dict[str, Any], outcomes: list[Outcome], quick: bool) -> str:
    """The table and the machine line (what goes into results.md and between the markers in docs/benchmarks.md)."""
    rows = [row for outcome in outcomes for row in headline_of(outcome)]
    return markdown_table(rows) + "\n\n" + machine_line(machine, outcomes, quick) + "\n"


def results_json(machine: dict[str, Any], outcomes: list[Outcome], quick: bool) -> dict[str, Any]:
    """Everything: run_all's machine context, every headline row, and each bench's command, exit code and result."""
    return {
        "quick": quick,
        "machine": machine,
        "headline": [row for outcome in outcomes for row in headline_of(outcome)],
        "benches": [
            {
                "name": o.bench.name,
                "command": o.command,
                "exit_code": o.exit_code,
                "seconds": round(o.seconds, 1),
                "error": o.error,
                "logs": str(o.log_dir) if o.log_dir else None,
                "result": o.result,
            }
            for o in outcomes
        ],
    }


# --------------------------------------------------------------------------------------------- docs/benchmarks.md
def check_results_markers(text: str, where: str) -> None:
    """Raise a WsteerError unless ``text`` has the start marker followed by the end marker."""
    start, end = text.find(RESULTS_START), text.find(RESULTS_END)
    if start < 0 or end < 0 or end < start:
        raise WsteerError(
            f"the bench-results markers are missing (or out of order): need a line {RESULTS_START} and, after it, "
            f"a line {RESULTS_END}",
            where=where,
            fix="add both lines where the table goes, then rerun with --write-docs",
        )


def replace_results_block(text: str, block: str, where: str = str(RESULTS_PAGE)) -> str:
    """``text`` with everything between the bench-results markers replaced by ``block`` (markers kept)."""
    check_results_markers(text, where)
    head = text[: text.index(RESULTS_START) + len(RESULTS_START)]
    tail = text[text.index(RESULTS_END) :]
    return f"{head}\n{block.strip()}\n{tail}"


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None, benches: tuple[Bench, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [b.name for b in benches]
    parser.add_argument("--quick", action="store_true", help="small settings (~1–2 min a bench), one torch thread")
    parser.add_argument("--only", help=f"comma-separated benches to run (of {', '.join(names)})")
    parser.add_argument("--threads", type=int, help="--threads N for every bench that takes it (default: theirs)")
    parser.add_argument("--out-dir", type=Path, help="where results.md, results.json and logs/ go (default: bench/)")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"replace the bench-results block in {RESULTS_PAGE.as_posix()}"
    )
    parser.add_argument("--verbose", action="store_true", help="show each bench's stdout as it runs")
    args = parser.parse_args(argv)
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            parser.error(f"--only: unknown bench {', '.join(unknown)} (known: {', '.join(names)})")
        args.selected = [b for b in benches if b.name in wanted]
    else:
        args.selected = list(benches)
    if args.write_docs and args.quick:
        parser.error("--write-docs with --quick: quick figures are a smoke run, not the manual's; drop one")
    return args


def main(argv: list[str] | None = None, benches: tuple[Bench, ...] = BENCHES, repo_root: Path = REPO_ROOT) -> int:
    """Run the selected benches one after another and write the results; 1 if any failed, 2 on a usage error."""
    args = parse_args(argv, benches)
    page = repo_root / RESULTS_PAGE
    try:
        if args.write_docs:  # before an hour of benches, not after
            check_results_markers(page.read_text(encoding="utf-8") if page.is_file() else "", str(page))
    except WsteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = args.out_dir or repo_root / "bench"
    machine = machine_context(None)
    print(
        f"{len(args.selected)} benches, {'quick' if args.quick else 'full'} settings; {machine['cpus']} CPUs, "
        f"load average {machine['load_average'][0]:.2f}; logs in {out_dir / 'logs'}",
        flush=True,
    )
    outcomes = []
    for index, bench in enumerate(args.selected, 1):
        arguments = bench_arguments(bench, args.quick, args.threads)
        print(f"[{index}/{len(args.selected)}] {bench.name}: {shlex.join(['python', bench.script, *arguments])}")
        print(f"    started {datetime.datetime.now():%H:%M:%S}", flush=True)
        outcome = run_bench(bench, arguments, repo_root, out_dir / "logs", echo=args.verbose)
        outcomes.append(outcome)
        if outcome.ok:
            print(f"    done in {outcome.seconds:.0f} s")
            for row in outcome.result["headline"]:
                print(f"    {_ratio_cell(row.get('ratio')):>6}  {row.get('measure')}  (goal: {_goal_cell(row)})")
        else:
            print(f"    FAILED in {outcome.seconds:.0f} s, exit code {outcome.exit_code}: {outcome.error}")
            print(f"    see {out_dir / 'logs' / bench.name}.stderr")
        sys.stdout.flush()

    markdown = results_markdown(machine, outcomes, args.quick)
    atomic_write_text(out_dir / "results.md", markdown)
    write_json(out_dir / "results.json", results_json(machine, outcomes, args.quick))
    print()
    print(markdown)
    print(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}")
    failed = [o.bench.name for o in outcomes if not o.ok]
    if args.write_docs:
        if failed:
            print(f"{page} left as it was: {', '.join(failed)} failed", file=sys.stderr)
        else:
            text = page.read_text(encoding="utf-8")
            atomic_write_text(page, replace_results_block(text, markdown, str(page)))
            print(f"replaced the bench-results block in {page}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
