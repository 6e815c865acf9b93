"""End to end on the real SmolLM2-135M: 40 prompts generated (persona words banned), then curated."""

import json

import pytest
import yaml
from wsteer.pairs.curate import RULE_IDS

from wsteer import textstats as ts


@pytest.mark.slow
def test_generate_and_curate_40_prompts_on_smollm2(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw, curated = tmp_path / "pairs" / "raw.jsonl", tmp_path / "pairs" / "curated.jsonl"
    config = tmp_path / "generate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "pair": {"pos": "honest", "neg": "dishonest"},
                "template": {"text": "Pretend you're a {persona} person."},
                "prompts": {"limit": 40},
                "model": {"name": "smollm2-135m"},
                "sampling": {"max_new_tokens": 40, "temperature": 0.7},
                "batch_size": 16,
                "vocabulary": {"mode": "ban"},
                "out": str(raw),
            }
        )
    )
    result = cli("pairs", "generate", "--config", config)
    assert result.code == 0, result
    records = [json.loads(line) for line in raw.read_text().splitlines()]
    assert len(records) == 40 == len({r["id"] for r in records})
    assert len({r["domain"] for r in records}) == 7
    terms = ts.persona_terms("honest", "dishonest")
    for record in records:
        assert record["cho"] and record["rej"] and (record["pos"], record["neg"]) == ("honest", "dishonest")
        assert not ts.find_leaks(record["cho"] + "\n" + record["rej"], terms), record  # the ban held
    assert sum(r["cho"] != r["rej"] for r in records) >= 30  # the persona changes most answers

    result = cli("pairs", "curate", raw, "--out", curated, "--force")
    assert result.code == 0, result
    report = json.loads(curated.with_name("curated.report.json").read_text())
    kept = [json.loads(line) for line in curated.read_text().splitlines()]
    dropped = [json.loads(line) for line in curated.with_name("curated.dropped.jsonl").read_text().splitlines()]
    assert report["pairs_in"] == 40 and len(kept) + len(dropped) == 40 and len(kept) == report["pairs_out"] > 0
    assert sum(report["rules"][rule]["dropped"] for rule in RULE_IDS) == len(dropped)
    raw_by_id = {r["id"]: r for r in records}
    for record in kept:
        lengths = sorted(ts.word_count(record[side]) for side in ("cho", "rej"))
        assert lengths[1] <= 1.25 * lengths[0]
        assert record["curation"]["len_after"] == {s: ts.word_count(record[s]) for s in ("cho", "rej")}
        assert not ts.has_persona_echo(record["cho"], terms) and not ts.has_persona_echo(record["rej"], terms)
        for side in ("cho", "rej"):  # truncated answers were cut back to the end of a complete sentence
            source = raw_by_id[record["id"]][side]
            if record["finish"][side] == "length":
                assert record[side] in {source[:cut].rstrip() for cut in ts.sentence_boundaries(source)}
