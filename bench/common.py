"""What every bench writes with ``--json PATH``: headline rows, the machine it ran on, and the command that made it.

The file's top level is ``{"headline": [...], "machine": {...}, ...}`` plus whatever details the bench adds. A
headline row is ``{"bench", "measure", "ours", "baseline", "ratio", "goal", "met", "command"}``: ``ours`` and
``baseline`` are values with their unit as strings, ``ratio`` is ours / baseline of the quantity shown (so for times
and memory lower is better, for rates higher is better; ``measure`` says which), ``goal`` is the issue's target or
None, ``met`` whether the figure reaches it (None without a goal). ``bench/run_all.py`` collects the rows into the
manual's table (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_context(torch_threads: int | None) -> dict[str, Any]:
    """Where and under what load a bench runs; call it when the bench starts (the load average is read now)."""
    load = os.getloadavg()
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "torch_threads": torch_threads,
        "load_average": [round(value, 2) for value in load],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_version,
    }


def start_machine(threads: int | None = None) -> dict[str, Any]:
    """Set torch's intra-op threads (when given), then read and print the machine context the bench runs under."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    machine = machine_context(torch.get_num_threads())
    load = machine["load_average"]
    print(
        f"machine: {machine['cpus']} CPUs, torch threads {machine['torch_threads']}, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (a load above the CPU count means the numbers are contended)"
    )
    return machine


FILLER = "The answer depends on what you need, and here is why it matters. "


def filler_tokens(tokenizer, n: int) -> list[int]:
    """``n`` token ids of a neutral answer sentence, repeated: an answer of a chosen length for scoring benches."""
    ids = tokenizer(FILLER)["input_ids"]
    return (ids * (n // len(ids) + 1))[:n]


def reproduce_command(argv: list[str] | None = None, script: str | None = None) -> str:
    """The command line that reruns this bench: ``python bench/X.py`` + its arguments, without ``--json PATH``."""
    argv = sys.argv[1:] if argv is None else argv
    script_path = Path(script or sys.argv[0]).resolve()
    try:
        shown = script_path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        shown = str(script_path)
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            kept.append(arg)
    return shlex.join(["python", shown, *kept])


def headline_row(
    bench: str,
    measure: str,
    ours: str,
    baseline: str,
    ratio: float | None,
    command: str,
    goal: str | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    """One row of the results table (see the module docstring for what each field means)."""
    finite = ratio is not None and ratio == ratio and abs(ratio) != float("inf")
    return {
        "bench": bench,
        "measure": measure,
        "ours": ours,
        "baseline": baseline,
        "ratio": round(float(ratio), 4) if finite else None,
        "goal": goal,
        "met": met,
        "command": command,
    }


def ratio_of(ours: float, baseline: float) -> float | None:
    """ours / baseline, or None when the baseline is zero."""
    return ours / baseline if baseline else None


def write_result(path: str | Path, headline: list[dict], machine: dict, **details: Any) -> Path:
    """Write the bench's machine-readable result atomically: headline rows, machine context, details."""
    from wsteer.io import write_json

    return write_json(path, {"headline": headline, "machine": machine, **details})
