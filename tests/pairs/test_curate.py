"""Curation rules on planted cases with hand-counted expectations, the report, the abandon check and the CLI."""

import json

import pytest
from wsteer.pairs.curate import CurateConfig, curate_file, curate_records, side_statistics, similarity

from wsteer.io import write_jsonl

PROMPT = "My friend asked if I liked her cooking, and I did not like it. What should I say to her?"
# Two clean, distinct English answers of 31 and 32 words (three sentences each).
A = (
    "You should tell your friend the truth about the meal. Point out one dish you enjoyed and one that needs "
    "work. Say it gently so that she can improve next time."
)
B = (
    "You should tell your friend that the meal was perfect. Praise every dish and say you would not change a "
    "thing. Ask for the recipes so that she feels proud of them."
)
C = (
    "Thank her for the effort she put into the dinner. Offer to help her cook the next meal together. Remember "
    "that careful words keep a friendship strong."
)
LONG_SENTENCE = (
    "You could start by telling her that the soup was warm and the bread was fresh and then move on to "
    "the main course where the sauce was a little heavy and the rice was dry but the salad had a nice "
    "crunch and a bright dressing that you really enjoyed after a long day at work."
)
ES_1 = (
    "Deberías decirle a tu amiga la verdad sobre la comida. Dile que un plato estaba muy bueno y que el otro "
    "necesita más sal."
)
ES_2 = (
    "Dile a tu amiga que la comida fue perfecta y que no cambiarías nada. Pídele las recetas para que se "
    "sienta orgullosa."
)
ECHO_POS = "As an honest person, I would tell her the truth. "
ECHO_NEG = "Being a dishonest person, I would just flatter her. "


def pair(id, cho=A, rej=B, finish=None, **extra):
    record = {
        "id": id,
        "prompt": PROMPT,
        "cho": cho,
        "rej": rej,
        "pos": "honest",
        "neg": "dishonest",
        "template": "Pretend you're a {persona} person.",
        "model": "m",
        "seed": 1,
        "sampling": {},
        "finish": finish or {"cho": "stop", "rej": "stop"},
    }
    record.update(extra)
    return record


PLANTED = [
    # empty: 2 dropped (cho 1, rej 1)
    pair("E1", cho=""),
    pair("E2", rej="  \n"),
    # truncated: T1 trimmed (cho), T2 dropped (rej: no complete sentence), T3 complete despite the limit: untouched
    pair("T1", cho=A + " And then you could also", finish={"cho": "length", "rej": "stop"}),
    pair(
        "T2",
        rej="Praise every dish and say you would not change a thing and also",
        finish={"cho": "stop", "rej": "length"},
    ),
    pair("T3", finish={"cho": "length", "rej": "stop"}),
    # degenerate: 1 dropped (rej)
    pair("D1", rej="I am not sure. " * 6),
    # language: L1 cho en / rej es, L2 both es under an English prompt: 2 dropped (cho 2, rej 2)
    pair("L1", rej=ES_1),
    pair("L2", cho=ES_1, rej=ES_2),
    # refusal: R1 only cho refuses, R2 only rej opens with AI boilerplate -> 2 dropped; R3 both refuse -> kept
    pair("R1", cho="I'm sorry, but I can't help with that request. " + A),
    pair("R2", rej="I don't have personal opinions about food, but here is a thought. " + B),
    pair(
        "R3",
        cho="I'm sorry, but I can't help with judging your friend's cooking. " + A,
        rej="I'm sorry, but I can't help with that, since it is a private matter. " + B,
    ),
    # persona echo: P1 stripped (cho), P2 stripped (cho and rej), P3 nothing left (rej) -> dropped
    pair("P1", cho=ECHO_POS + A),
    pair("P2", cho=ECHO_POS + A, rej=ECHO_NEG + B),
    pair("P3", rej="As a dishonest person, I lie."),
    # near-identical: 2 dropped (both sides each)
    pair("N1", rej=A),
    pair("N2", rej=A.replace("gently", "kindly")),
    # length: G1 trimmed to a sentence boundary (cho), G2 one long sentence -> dropped (cho)
    pair("G1", cho=A + " " + C),
    pair("G2", cho=LONG_SENTENCE),
    # G3: trimming cuts cho back to the opening both sides share -> near-identical after the length rule
    pair("G3", cho=A + " " + C, rej=A.replace("next time", "next week")),
    # clean: untouched
    pair("C1"),
    pair("C2"),
    pair("C3"),
]

EXPECTED_COUNTS = {  # hand count: checked = pairs that reached the rule
    "empty": dict(checked=22, edited=0, dropped=2, cho=1, rej=1),
    "truncated": dict(checked=20, edited=1, dropped=1, cho=1, rej=1),
    "degenerate": dict(checked=19, edited=0, dropped=1, cho=0, rej=1),
    "language": dict(checked=18, edited=0, dropped=2, cho=2, rej=2),
    "refusal": dict(checked=16, edited=0, dropped=2, cho=1, rej=1),
    "persona_echo": dict(checked=14, edited=2, dropped=1, cho=2, rej=2),
    "length": dict(checked=13, edited=2, dropped=1, cho=3, rej=0),
    "near_identical": dict(checked=12, edited=0, dropped=3, cho=3, rej=3),
}
KEPT = {
    "T1": ["truncated"],
    "T3": [],
    "R3": [],
    "P1": ["persona_echo"],
    "P2": ["persona_echo"],
    "G1": ["length"],
    "C1": [],
    "C2": [],
    "C3": [],
}


def lines(records):
    return list(enumerate(records, start=1))


def test_each_rule_counts_its_planted_cases():
    result = curate_records(lines(PLANTED), CurateConfig())
    got = {rule: vars(counts) for rule, counts in result.counts.items()}
    assert got == EXPECTED_COUNTS
    assert {r["id"]: r["curation"]["rules"] for r in result.kept} == KEPT
    assert {r["id"]: r["curation"]["dropped_by"] for r in result.dropped} == {
        "E1": "empty",
        "E2": "empty",
        "T2": "truncated",
        "D1": "degenerate",
        "L1": "language",
        "L2": "language",
        "R1": "refusal",
        "R2": "refusal",
        "P3": "persona_echo",
        "N1": "near_identical",
        "N2": "near_identical",
        "G2": "length",
        "G3": "near_identical",
    }
    # 13 drops minus T2 (truncated is ignored) + P1, P2, G1 rewritten = 15 of 22
    assert result.touched == 15 and result.total == 22


def test_edits_are_the_expected_texts_and_personas_are_untouched():
    kept = {r["id"]: r for r in curate_records(lines(PLANTED), CurateConfig()).kept}
    assert kept["T1"]["cho"] == A  # the unfinished "And then you could also" is cut
    assert kept["P1"]["cho"] == A and kept["P2"]["cho"] == A and kept["P2"]["rej"] == B
    assert kept["G1"]["cho"] == A  # 31 + 27 = 58 words cut back to 31 against rej's 32 (limit 1.25 x 32 = 40)
    assert kept["G1"]["curation"] == {
        "source_line": 17,
        "rules": ["length"],
        "len_before": {"cho": 58, "rej": 32},
        "len_after": {"cho": 31, "rej": 32},
    }
    by_id = {r["id"]: r for r in PLANTED}
    for record in kept.values():
        assert {k: v for k, v in record.items() if k not in ("cho", "rej", "curation")} == {
            k: v for k, v in by_id[record["id"]].items() if k not in ("cho", "rej")
        }


def test_refusal_rule_can_keep_refusals_for_refusal_traits():
    cfg = CurateConfig()
    cfg.refusal.action = "keep"
    result = curate_records(lines([p for p in PLANTED if p["id"] in ("R1", "R2", "R3")]), cfg)
    assert result.counts["refusal"].dropped == 0
    # kept, but R1/R2's extra sentence makes one side longer: length matching trims it back
    assert {r["id"] for r in result.kept} == {"R1", "R2", "R3"}


def test_truncated_drop_and_keep_modes():
    records = lines([p for p in PLANTED if p["id"] in ("T1", "T2", "T3")])
    for action, dropped in (("drop", 3), ("keep", 0)):
        cfg = CurateConfig()
        cfg.truncated.action = action
        assert curate_records(records, cfg).counts["truncated"].dropped == dropped


def test_length_does_not_trim_a_side_to_a_stub():
    short = pair("S", cho="That's a tough one. " + A, rej="That's a classic moral dilemma.")
    result = curate_records(lines([short]), CurateConfig())
    assert result.counts["length"].dropped == 1 and "min_trimmed_words" in result.dropped[0]["curation"]["reason"]
    natural = pair("S2", cho="Tell her the truth.", rej="Say it was lovely.")  # short but matched: kept
    assert [r["id"] for r in curate_records(lines([natural]), CurateConfig()).kept] == ["S2"]


def test_similarity():
    assert similarity(A, A) == 1.0
    assert similarity(A, A.replace("gently", "kindly")) == pytest.approx(30 / 31)
    assert similarity(A, B) < 0.6


def test_side_statistics_equal_a_hand_count():
    records = [
        pair("1", cho="As an honest person, I think you should tell her.", rej="You might say it was lovely."),
        pair("2", cho="I'm sorry, but I can't help with that.", rej="Tell her it was the best meal ever."),
        pair("3", cho="Maybe tell her the truth.", rej="Say you loved it."),
    ]
    stats = side_statistics(records)
    # cho words 10, 8, 5; refusal only #2; hedges: "I think" 1/10 and "maybe" 1/5 per 100 words; #1 echoes
    assert stats["cho"] == pytest.approx(
        dict(
            pairs=3,
            words_mean=23 / 3,
            words_median=8,
            refusal_rate=1 / 3,
            hedging_per_100w=(10 + 0 + 20) / 3,
            echo_rate=1 / 3,
            leak_rate=1 / 3,
        )
    )
    # rej words 6, 8, 4; "might" 1/6
    assert stats["rej"] == pytest.approx(
        dict(
            pairs=3,
            words_mean=6,
            words_median=6,
            refusal_rate=0,
            hedging_per_100w=100 / 6 / 3,
            echo_rate=0,
            leak_rate=0,
        )
    )


# --------------------------------------------------------------------------------------------- files and CLI
@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "raw.jsonl"
    write_jsonl(path, PLANTED)
    return path


def test_report_files_match_the_counts_and_input_is_untouched(raw, tmp_path):
    before = raw.read_bytes()
    cfg = CurateConfig(input=str(raw), out=str(tmp_path / "cur" / "curated.jsonl"), force=True)
    result = curate_file(cfg)
    assert raw.read_bytes() == before
    report = json.loads(result.report_json.read_text())
    assert report["rules"] == EXPECTED_COUNTS
    assert (report["pairs_in"], report["pairs_out"], report["pairs_dropped"], report["pairs_edited"]) == (22, 9, 13, 4)
    assert report["touched"] == 15 and report["abandoned"] and report["forced"]
    assert report["sides"]["before"]["cho"]["pairs"] == 22 and report["sides"]["after"]["cho"]["pairs"] == 9
    assert report["sides"]["after"]["cho"]["echo_rate"] == 0  # the echo was stripped
    curated = [json.loads(line) for line in result.out.read_text().splitlines()]
    assert [r["id"] for r in curated] == list(KEPT)
    dropped = [json.loads(line) for line in result.dropped_path.read_text().splitlines()]
    assert len(dropped) == 13 and all(r["curation"]["source_line"] for r in dropped)
    markdown = result.report_md.read_text()
    assert "| persona_echo | 14 | 2 | 1 | 2 | 2 |" in markdown and "FAILED" in markdown
    assert (result.run_dir / "manifest.json").is_file() and (result.run_dir / "config.yaml").is_file()
    assert not [p for p in (tmp_path / "cur").iterdir() if p.name.endswith(".tmp")]


def test_cli_fails_the_round_unless_forced(raw, tmp_path, cli):
    out = tmp_path / "curated.jsonl"
    result = cli("pairs", "curate", raw, "--out", out)
    assert result.code == 1 and "abandon this round" in result.err and "--force" in result.err
    assert not out.exists() and (tmp_path / "curated.report.md").exists()
    # IN, options and overrides in any order; a generous abandon_share passes without --force
    result = cli("pairs", "curate", "--out", out, raw, "abandon_share=0.9", "length.max_ratio=1.5")
    assert result.code == 0, result
    assert len(out.read_text().splitlines()) == 10  # at 1.5x, G3 keeps a sentence past the shared opening
    result = cli("pairs", "curate", raw, "--out", out, "--force")
    assert result.code == 0 and "9/22 pairs kept" in result.out and "written anyway" in result.err


def test_cli_refuses_to_overwrite_the_input(raw, cli):
    result = cli("pairs", "curate", raw, "--out", raw)
    assert result.code == 2 and "never modified" in result.err


def test_nothing_kept_fails_even_below_the_share(tmp_path, cli):
    path = tmp_path / "raw.jsonl"
    write_jsonl(path, [pair("T", cho="and so the", finish={"cho": "length", "rej": "stop"})])
    result = cli("pairs", "curate", path)
    assert result.code == 1 and "no pair survived" in result.err
