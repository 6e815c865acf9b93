"""bench/run_all.py: the table from the benches' --json results, failed benches, docs/benchmarks.md block replacement.

No real model: fake bench scripts in tmp_path stand in for the benches (run_all's ``benches`` hook).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bench import run_all
from bench.common import headline_row, reproduce_command
from bench.run_all import RESULTS_END, RESULTS_START, Bench
from bench.train_vs_trl import headline_rows
from wsteer.errors import WsteerError

FAKE_OK = """
import json, sys
sys.path.insert(0, {repo!r})
from bench.common import headline_row, machine_context, reproduce_command, write_result
args = sys.argv[1:]
path = args[args.index("--json") + 1]
row = headline_row("fake_ok", "speed | fake", "10.0 tok/s", "2.5 tok/s", 4.0, reproduce_command(),
                   goal="≥ 4×", met=True)
write_result(path, [row], machine_context(3), settings={{"args": args}})
print("fake bench ran", args)
"""

FAKE_FAIL = """
import sys
print("about to fail")
sys.stderr.write("progress 10%\\rprogress 50%\\n")
sys.stderr.write("RuntimeError: out of fake memory\\n")
sys.exit(3)
"""

FAKE_SILENT = "print('forgot to write --json')\n"


def fake_benches(tmp_path: Path) -> tuple[Bench, ...]:
    repo = Path(run_all.__file__).resolve().parents[1]
    scripts = {"fake_ok.py": FAKE_OK.format(repo=str(repo)), "fake_fail.py": FAKE_FAIL, "fake_silent.py": FAKE_SILENT}
    for name, text in scripts.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return (
        Bench("fake_ok", str(tmp_path / "fake_ok.py"), quick=("--rows", "2")),
        Bench("fake_fail", str(tmp_path / "fake_fail.py")),
        Bench("fake_silent", str(tmp_path / "fake_silent.py"), takes_threads=False),
    )


def test_a_failing_bench_is_a_failed_row_and_the_others_still_run(tmp_path, capsys):
    benches = fake_benches(tmp_path)
    code = run_all.main(["--out-dir", str(tmp_path / "out"), "--threads", "1"], benches=benches, repo_root=tmp_path)

    assert code == 1
    table = (tmp_path / "out/results.md").read_text()
    lines = table.splitlines()
    assert lines[0] == "| bench | measure | ours | baseline | ratio (ours / baseline) | goal | command |"
    ok = next(line for line in lines if line.startswith("| fake_ok "))
    # the pipe inside the measure is escaped, the command is the bench's own (without --json), the goal is marked
    assert "speed \\| fake" in ok and "| 10.0 tok/s | 2.5 tok/s | 4.00 | ≥ 4× (met) |" in ok
    assert f"`python {tmp_path / 'fake_ok.py'} --threads 1`" in ok and "--json" not in ok
    failed = next(line for line in lines if line.startswith("| fake_fail "))
    assert "**failed**" in failed and "exit code 3: RuntimeError: out of fake memory" in failed
    silent = next(line for line in lines if line.startswith("| fake_silent "))
    assert "exit code 0: exited 0 but wrote no --json result" in silent
    assert "Machine: " in table and "torch threads: fake_ok 3" in table and "full settings" in table

    result = json.loads((tmp_path / "out/results.json").read_text())
    assert [b["name"] for b in result["benches"]] == ["fake_ok", "fake_fail", "fake_silent"]
    assert [b["exit_code"] for b in result["benches"]] == [0, 3, 0]
    assert result["benches"][0]["result"]["settings"]["args"][:2] == ["--threads", "1"]
    assert result["headline"][0]["ratio"] == 4.0 and result["headline"][1]["failed"] is True
    assert (tmp_path / "out/logs/fake_fail.stdout").read_text() == "about to fail\n"
    printed = capsys.readouterr()
    assert "[2/3] fake_fail" in printed.out and "FAILED" in printed.out and "fake_fail" in printed.err


def test_only_quick_and_write_docs_replace_just_the_block(tmp_path):
    benches = fake_benches(tmp_path)
    page = tmp_path / "docs/benchmarks.md"
    page.parent.mkdir()
    page.write_text(f"# Title\n\nbefore\n{RESULTS_START}\nold table\n{RESULTS_END}\nafter\n")
    args = ["--out-dir", str(tmp_path / "out"), "--only", "fake_ok", "--write-docs"]

    assert run_all.main(args, benches=benches, repo_root=tmp_path) == 0
    text = page.read_text()
    assert text.startswith(f"# Title\n\nbefore\n{RESULTS_START}\n| bench |")
    assert text.endswith(f"{RESULTS_END}\nafter\n")
    assert "old table" not in text and "fake_fail" not in text
    assert (tmp_path / "out/results.md").read_text().strip() in text

    # quick settings: the bench's quick arguments and one torch thread
    assert run_all.main(["--out-dir", str(tmp_path / "q"), "--only", "fake_ok", "--quick"], benches, tmp_path) == 0
    quick = json.loads((tmp_path / "q/results.json").read_text())
    assert quick["quick"] is True
    assert quick["benches"][0]["command"] == f"python {tmp_path / 'fake_ok.py'} --rows 2 --threads 1"
    assert "quick settings" in (tmp_path / "q/results.md").read_text()


def test_write_docs_without_markers_fails_before_running_anything(tmp_path, capsys):
    benches = fake_benches(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/benchmarks.md").write_text("# no markers here\n")
    code = run_all.main(["--out-dir", str(tmp_path / "out"), "--write-docs"], benches=benches, repo_root=tmp_path)
    assert code == 2
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert RESULTS_START in err and RESULTS_END in err and "docs/benchmarks.md" in err


def test_the_docs_page_is_left_alone_when_a_bench_failed(tmp_path):
    benches = fake_benches(tmp_path)
    original = f"{RESULTS_START}\nold\n{RESULTS_END}\n"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/benchmarks.md").write_text(original)
    args = ["--out-dir", str(tmp_path / "out"), "--only", "fake_ok,fake_fail", "--write-docs"]
    assert run_all.main(args, benches=benches, repo_root=tmp_path) == 1
    assert (tmp_path / "docs/benchmarks.md").read_text() == original


def test_replace_results_block_is_idempotent_and_checks_the_marker_order():
    text = f"a\n{RESULTS_START}\nx\n{RESULTS_END}\nb\n"
    once = run_all.replace_results_block(text, "| t |\n")
    assert once == f"a\n{RESULTS_START}\n| t |\n{RESULTS_END}\nb\n"
    assert run_all.replace_results_block(once, "| t |\n") == once
    with pytest.raises(WsteerError, match="bench-results markers"):
        run_all.replace_results_block(f"{RESULTS_END}\n{RESULTS_START}\n", "| t |")


def test_unknown_bench_in_only_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--only", "nope"], benches=fake_benches(tmp_path), repo_root=tmp_path)
    assert exit_info.value.code == 2
    assert "unknown bench nope" in capsys.readouterr().err


def test_reproduce_command_drops_json_and_is_relative_to_the_checkout():
    repo = Path(run_all.__file__).resolve().parents[1]
    argv = ["--rows", "4", "--json", "/tmp/x.json", "--threads=1", "--json=/tmp/y.json"]
    command = reproduce_command(argv, str(repo / "bench/generation.py"))
    assert command == "python bench/generation.py --rows 4 --threads=1"


def test_train_headline_rows_apply_the_dpo_goals_against_trl():
    rows = [
        {"arm": "trl", "wall_s": 200.0, "peak_rss_mb": 2400, "shift_plus": 0.001},
        {"arm": "dpo", "wall_s": 100.0, "peak_rss_mb": 2500, "shift_plus": 0.1},
        {"arm": "bidirectional", "wall_s": 300.0, "peak_rss_mb": 2600, "shift_plus": 0.0},
    ]
    headline = headline_rows(rows, "python bench/train_vs_trl.py")
    assert len(headline) == 6
    wall, rss, shift = headline[:3]
    assert (wall["ratio"], wall["met"], wall["ours"], wall["baseline"]) == (0.5, True, "100.0 s", "200.0 s")
    assert (rss["ratio"], rss["met"]) == (pytest.approx(2500 / 2400, abs=1e-4), False)
    assert (shift["ratio"], shift["met"], shift["ours"]) == (100.0, True, "+0.1000")
    assert all(row["goal"] is None and row["met"] is None for row in headline[3:])
    assert headline_row("b", "m", "1", "0", None, "c")["ratio"] is None
    rows[0]["shift_plus"] = -0.004  # TRL moved the held-out margin the wrong way: no ratio, the goal still holds
    shift = headline_rows(rows, "c")[2]
    assert (shift["ratio"], shift["met"], shift["baseline"]) == (None, True, "-0.0040")
