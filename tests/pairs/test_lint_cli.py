"""``wsteer pairs lint``: human table or JSON, exit 1 on any error finding, 0 otherwise."""

import json

from wsteer.pairs.personas import LIBRARY

VIM = ("prefers vim because modal editing is faster", "prefers emacs because one scheme is simpler")
RULE5 = (
    "looks after others' wellbeing even when it means defying authority",
    "defers to authority even when others' wellbeing suffers for it",
)


def test_seed_failing_example_exits_1_with_diff_and_fix(cli):
    result = cli("pairs", "lint", f"pos={VIM[0]}", f"neg={VIM[1]}")
    assert result.code == 1, result
    assert "FAIL" in result.out and "unmirrored-clause" in result.out and "fix:" in result.out
    assert "[vim]" in result.out and "[emacs]" in result.out and "<faster>" in result.out


def test_seed_passing_example_exits_0(cli):
    result = cli("pairs", "lint", f"pos={RULE5[0]}", f"neg={RULE5[1]}")
    assert result.code == 0, result
    assert "PASS" in result.out and "1 pass" in result.out


def test_warnings_only_exit_0_and_json(cli):
    result = cli("pairs", "lint", "pos=honest and brave", "neg=dishonest and cowardly", "json=true")
    assert result.code == 0, result
    data = json.loads(result.out)
    assert data["errors"] == 0 and data["warnings"] == 1
    (pair,) = data["pairs"]
    assert pair["status"] == "warn" and pair["findings"][0]["rule"] == "extra-flip"
    assert {"rule", "severity", "message", "fix"} <= set(pair["findings"][0])
    assert ["honest", "flip"] in pair["diff"][0]["pos"]


def test_library_file_lints_clean(cli):
    result = cli("pairs", "lint", LIBRARY / "pairs.yaml")
    assert result.code == 0, result
    assert " 0 fail" in result.out


def test_pairs_file_with_a_bad_pair_names_file_and_line(cli, tmp_path):
    path = tmp_path / "pairs.yaml"
    path.write_text(
        "pairs:\n  - id: good\n    pos: honest\n    neg: dishonest\n  - id: bad\n    pos: honest\n    neg: not honest\n"
    )
    result = cli("pairs", "lint", path, "json=true")
    assert result.code == 1
    data = json.loads(result.out)
    assert [p["status"] for p in data["pairs"]] == ["pass", "fail"]
    assert data["pairs"][1]["where"] == f"{path}:5"
    only_good = cli("pairs", "lint", path, "ids=[good]")
    assert only_good.code == 0 and "1 pair(s)" in only_good.out and "not honest" not in only_good.out


def test_usage_errors_are_one_line(cli, tmp_path):
    both = cli("pairs", "lint", tmp_path / "x.yaml", "pos=a", "neg=b")
    assert both.code == 2 and "either FILE or pos/neg" in both.err
    neither = cli("pairs", "lint", "pos=honest")
    assert neither.code == 2 and "nothing to lint" in neither.err
