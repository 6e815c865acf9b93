"""`wsteer pairs curate` on standard data: TRL preference rows (plain, conversational) and datasets directories are
curated like wsteer pairs, without personas, and the output is what `wsteer train` reads."""

import json

import pytest
from wsteer.pairs.curate import CurateConfig, curate_file
from wsteer.train.data import load_pair_set

from wsteer.errors import ConfigError

GOOD_CHO = (
    "You should tell your friend the truth about the meal. Point out one dish you enjoyed and one that needs "
    "work. Say it gently so that she can improve next time."
)
GOOD_REJ = (
    "You should tell your friend that the meal was perfect. Praise every dish and say you would not change a "
    "thing. Ask for the recipes so that she feels proud of them."
)
PROMPT = "My friend asked if I liked her cooking, and I did not like it. What should I say to her?"


def rows(conversational: bool) -> list[dict]:
    """Three clean pairs, one with an empty rejected answer, one where chosen mentions an extra persona term."""
    answers = [
        (GOOD_CHO, GOOD_REJ),
        (GOOD_CHO, ""),
        ("As a candid friend, I would be honest. " + GOOD_CHO, GOOD_REJ),
        (GOOD_REJ, GOOD_CHO),
    ]
    out = []
    for cho, rej in answers:
        if conversational:
            out.append(
                {
                    "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
                    "chosen": [{"role": "assistant", "content": cho}],
                    "rejected": [{"role": "assistant", "content": rej}],
                }
            )
        else:
            out.append({"prompt": PROMPT, "chosen": cho, "rejected": rej})
    return out


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


@pytest.mark.parametrize("source_kind", ["plain", "conversational", "save_to_disk"])
def test_trl_rows_are_curated_like_wsteer_pairs(tmp_path, source_kind):
    if source_kind == "save_to_disk":
        from datasets import Dataset

        source = tmp_path / "raw_dataset"
        Dataset.from_list(rows(conversational=True)).save_to_disk(str(source))
    else:
        source = write_jsonl(tmp_path / "raw.jsonl", rows(conversational=source_kind == "conversational"))
    before = sorted(p.name for p in source.rglob("*")) if source.is_dir() else source.read_bytes()
    cfg = CurateConfig(input=str(source), out=str(tmp_path / "curated.jsonl"), abandon_share=1.0)
    cfg.persona_echo.extra_terms = ["candid"]
    result = curate_file(cfg)
    kept = [json.loads(line) for line in (tmp_path / "curated.jsonl").read_text().splitlines()]
    dropped = [json.loads(line) for line in result.dropped_path.read_text().splitlines()]
    assert [d["curation"]["dropped_by"] for d in dropped] == ["empty"]
    assert len(kept) == 3 and all(k.get("pos") is None for k in kept)
    assert kept[1]["cho"] == GOOD_CHO and kept[1]["curation"]["rules"] == ["persona_echo"]  # extra term stripped
    assert {k["id"] for k in kept} == {f"{source.name}#{i}" for i in (0, 2, 3)}
    if source_kind != "plain":
        assert kept[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert not any(key.startswith("_") for k in kept for key in k)  # no bookkeeping keys leak into the file
    after = sorted(p.name for p in source.rglob("*")) if source.is_dir() else source.read_bytes()
    assert after == before
    pairs = load_pair_set(tmp_path / "curated.jsonl", None, 0.0, 0)  # what train reads
    assert len(pairs.train) == 3 and pairs.pos is None and pairs.persona_source is None


def test_hub_input_needs_out(tmp_path):
    with pytest.raises(ConfigError, match=r"not a local file or directory.*--out"):
        curate_file(CurateConfig(input="some-org/some-dataset"))


def test_curate_cli_takes_a_trl_file(cli, tmp_path):
    source = write_jsonl(tmp_path / "raw.jsonl", rows(conversational=False))
    result = cli("pairs", "curate", source, "--out", tmp_path / "c.jsonl", "abandon_share=1.0")
    assert result.code == 0, result
    assert "3/4 pairs kept" in result.out
