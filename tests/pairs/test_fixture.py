"""The committed SmolLM2 pairs fixture is what curation promises: schema, provenance, matched lengths, no leaks."""

import json
from pathlib import Path

from wsteer import textstats as ts
from wsteer.io import read_jsonl
from wsteer.records import PairRecord

DATA = Path(__file__).resolve().parents[1] / "data"


def test_curated_fixture_keeps_its_promises():
    curated = read_jsonl(DATA / "smollm2_pairs.jsonl", schema=PairRecord)
    raw_lines = (DATA / "smollm2_pairs.raw.jsonl").read_text().splitlines()
    assert len(curated) >= 40 and len({r["id"] for r in curated}) == len(curated)
    terms = ts.persona_terms("honest", "dishonest")
    for record in curated:
        source = json.loads(raw_lines[record["curation"]["source_line"] - 1])
        assert source["id"] == record["id"] and (source["pos"], source["neg"]) == (record["pos"], record["neg"])
        assert record["curation"]["len_before"] == {s: ts.word_count(source[s]) for s in ("cho", "rej")}
        counts = sorted(ts.word_count(record[s]) for s in ("cho", "rej"))
        assert counts[0] >= 1 and counts[1] <= 1.25 * counts[0]
        assert record["cho"] != record["rej"]
        assert not ts.leaks(record["cho"] + " " + record["rej"], terms)
