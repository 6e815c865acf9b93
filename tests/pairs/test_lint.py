"""The mirror-test lint: planted findings on a bad set, the seed's two examples, and a clean library."""

import json

import pytest
from wsteer.pairs.lint import format_diff, format_report, is_antonym, lint_pair, same_word
from wsteer.pairs.personas import LIBRARY, load_pairs, load_templates

SEED_PASS = (
    "looks after others' wellbeing even when it means defying authority",
    "defers to authority even when others' wellbeing suffers for it",
)
SEED_FAIL = ("prefers vim because modal editing is faster", "prefers emacs because one scheme is simpler")

# Deliberately bad pairs and the exact set of rule ids each must raise (no more, no fewer).
BAD_PAIRS = [
    (*SEED_FAIL, {"unmirrored-clause"}),
    ("prefers vim because it is faster", "prefers emacs because it is simpler", {"unmirrored-clause"}),
    ("honest", "not honest", {"negation", "absence", "pole-in-other"}),
    ("helps people", "doesn't help people", {"negation", "absence"}),
    ("stays calm", "lacks calm", {"absence"}),
    ("enthusiastic", "neutral", {"absence"}),
    ("values wisdom over speed", "values speed over wisdom", {"abstract-value"}),
    ("wisdom-over-speed", "speed-over-wisdom", {"abstract-value"}),
    ("honest and kind", "dishonest", {"unmirrored-clause"}),
    ("honest with friends", "dishonest", {"unmirrored-content"}),
    ("brave", "easily frightened", {"unbalanced-flip"}),
    (
        "prefers vim because modal editing is faster",
        "prefers emacs because its editing scheme is simpler",
        {"unmirrored-content", "unbalanced-flip", "extra-flip"},
    ),
    ("honest and brave", "dishonest and cowardly", {"extra-flip"}),
    ("patient", "impatient rather than patient", {"pole-in-other", "length-imbalance", "form-mismatch"}),
    (
        "tells the truth",
        "tells lies to anyone at all who happens to be listening at the time in the office",
        {"unmirrored-clause", "length-imbalance", "form-mismatch"},
    ),
    ("honest", "Honest", {"identical"}),
    (
        "reports a colleague's fraud to the regulator right away even though the colleague is a close friend "
        "whose family depends on the job",
        "hides a colleague's fraud from the regulator right away even though the colleague is a close friend "
        "whose family depends on the job",
        {"long-persona"},
    ),
]


@pytest.mark.parametrize("pos, neg, expected", BAD_PAIRS, ids=[f"{p[:24]}|{n[:24]}" for p, n, _ in BAD_PAIRS])
def test_bad_pairs_raise_exactly_the_planted_findings(pos, neg, expected):
    report = lint_pair(pos, neg)
    assert report.rules == expected, format_report(report)
    for finding in report.findings:
        assert finding.severity in ("error", "warning") and finding.message and finding.fix


def test_seed_failing_example_fails_with_an_error_naming_the_rationale():
    report = lint_pair(*SEED_FAIL)
    assert not report.ok
    messages = " ".join(f.message for f in report.errors)
    assert "because modal editing is faster" in messages and "because one scheme is simpler" in messages
    marks = {t.text: t.mark for block in report.diff for t in block.pos + block.neg}
    assert marks["vim"] == marks["emacs"] == "flip"  # the pole itself is fine
    assert marks["faster"] == marks["simpler"] == "unmirrored"


def test_seed_rule5_pair_passes_cleanly():
    report = lint_pair(*SEED_PASS)
    assert report.ok and not report.findings, format_report(report)
    marks = {t.text: t.mark for block in report.diff for t in block.pos + block.neg}
    assert marks["looks"] == marks["defers"] == "flip"
    assert "unmirrored" not in marks.values()


def test_severities_decide_ok():
    assert lint_pair("honest and brave", "dishonest and cowardly").ok  # warning only
    assert not lint_pair("honest", "not honest").ok
    long_gap = lint_pair("tells the truth", "tells lies to anyone at all who happens to be listening in the office")
    assert any(f.rule == "length-imbalance" and f.severity == "error" for f in long_gap.findings)


def test_good_pairs_of_several_shapes_pass():
    for pos, neg in [
        ("honest", "deceitful"),
        ("admits mistakes", "hides mistakes"),
        (
            "bends a rule when following it would hurt someone",
            "follows a rule even when following it would hurt someone",
        ),
        ("speaks up when a colleague is treated unfairly", "stays quiet when a colleague is treated unfairly"),
        ("helps a stranger first and asks questions later", "asks a stranger questions first and helps later"),
    ]:
        report = lint_pair(pos, neg)
        assert report.ok and not report.findings, format_report(report)


def test_word_matching_helpers():
    assert same_word("tells", "telling") and same_word("honest", "honesty") and same_word("gives", "giving")
    assert not same_word("honest", "dishonest")
    assert is_antonym("honest", "dishonest") and is_antonym("careful", "careless") and is_antonym("brave", "cowardly")
    assert not is_antonym("faster", "simpler")


def test_diff_is_aligned_and_marks_flips():
    report = lint_pair(*SEED_FAIL)
    pos_line, neg_line = format_diff(report.diff).splitlines()[:2]
    assert pos_line.index("because") == neg_line.index("because")  # aligned columns
    assert "[vim]" in pos_line and "[emacs]" in neg_line and "<faster>" in pos_line
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["status"] == "fail" and as_json["findings"][0]["rule"] == "unmirrored-clause"


def test_library_is_big_enough_and_lints_clean():
    pairs = load_pairs(LIBRARY / "pairs.yaml")
    assert len(pairs) >= 12
    assert {p.form for p in pairs} == {"adjective", "clause"}
    for pair in pairs:
        report = lint_pair(pair.pos, pair.neg, pair.id, pair.where)
        assert report.ok, format_report(report)


def test_template_library_covers_channels_and_forms():
    templates = load_templates(LIBRARY / "templates.yaml")
    assert len(templates) >= 8
    assert {t.channel for t in templates} >= {"acting", "judging", "thinking", "stating", "understanding"}
    for form in ("adjective", "clause"):
        assert {t.channel for t in templates if t.form == form} >= {
            "acting",
            "judging",
            "thinking",
            "stating",
            "understanding",
        }
