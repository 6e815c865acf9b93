"""Curated pairs -> TRL datasets.

The pairs file holds :class:`wsteer.records.PairRecord` lines whose ``prompt`` carries no persona: the adapter has
to learn the persona. Each pair becomes a *conversational* TRL example (user turn, assistant turn), so TRL renders
it through the model's chat template exactly like :func:`wsteer.chat.encode_prompt` does for generation, scoring
and eval (tests/train/test_data.py checks the token ids are identical).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wsteer.chat import build_messages
from wsteer.errors import DataError
from wsteer.io import iter_jsonl
from wsteer.records import PairRecord


@dataclass
class PairSet:
    """The pairs of one run: what they steer (pos/neg/template) and the train / held-out records."""

    pos: str
    neg: str
    template: str
    train: list[dict]
    heldout: list[dict]
    templates: list[str]


def read_pairs(path: str | Path) -> list[dict]:
    """Read a curated pairs file; errors name file:line. Empty cho/rej and empty files are refused."""
    records = []
    for number, record in iter_jsonl(path, PairRecord):
        for side in ("prompt", "cho", "rej"):
            if not record[side].strip():
                raise DataError(
                    f"field {side!r} is empty",
                    where=f"{path}:{number}",
                    fix="drop the pair or regenerate it (wsteer pairs curate drops empty answers)",
                )
        records.append({**record, "_where": f"{path}:{number}"})
    if not records:
        raise DataError(
            "the pairs file holds no pairs",
            where=str(path),
            fix="point `data` at curated.jsonl from `wsteer pairs curate`",
        )
    return records


def split_heldout(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out ``fraction`` of the *prompts* (all pairs of a prompt go to one side), chosen with ``seed``."""
    if fraction <= 0:
        return records, []
    prompts = sorted({r["prompt"] for r in records})
    random.Random(seed).shuffle(prompts)
    n_heldout = max(1, round(fraction * len(prompts))) if len(prompts) > 1 else 0
    heldout_prompts = set(prompts[:n_heldout])
    return (
        [r for r in records if r["prompt"] not in heldout_prompts],
        [r for r in records if r["prompt"] in heldout_prompts],
    )


def load_pair_set(data: str | Path, heldout: str | Path | None, heldout_fraction: float, seed: int) -> PairSet:
    """Read the training pairs (and held-out pairs, or split them off) and check they steer one persona pair."""
    records = read_pairs(data)
    if heldout is not None:
        train, held = records, read_pairs(heldout)
    else:
        train, held = split_heldout(records, heldout_fraction, seed)
    if not train:
        raise DataError(
            "no training pairs left after the held-out split",
            where=str(data),
            fix="add pairs or lower heldout_fraction",
        )
    first = train[0]
    for record in train + held:
        for key in ("pos", "neg"):
            if record[key] != first[key]:
                raise DataError(
                    f"{key} persona {record[key]!r} differs from {first[key]!r} ({first['_where']}); "
                    "one adapter steers one persona pair",
                    where=record["_where"],
                    fix="train one adapter per persona pair (split the file by pos/neg)",
                )
    templates = Counter(r["template"] for r in train)
    return PairSet(
        pos=first["pos"],
        neg=first["neg"],
        template=templates.most_common(1)[0][0],
        train=train,
        heldout=held,
        templates=sorted(templates),
    )


def _user_turn(record: dict) -> list[dict]:
    """The prompt as TRL's conversational format: the user turn, no persona, no system prompt."""
    return build_messages(record["prompt"])


def _assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def preference_rows(records: list[dict]) -> list[dict]:
    """TRL conversational preference rows: ``{"prompt": [user], "chosen": [assistant], "rejected": [assistant]}``."""
    return [
        {"prompt": _user_turn(r), "chosen": _assistant_turn(r["cho"]), "rejected": _assistant_turn(r["rej"])}
        for r in records
    ]


def completion_rows(records: list[dict], side: str) -> list[dict]:
    """TRL conversational prompt-completion rows for SFT on one side ('cho' or 'rej')."""
    return [{"prompt": _user_turn(r), "completion": _assistant_turn(r[side])} for r in records]


def to_dataset(rows: list[dict], cache_dir: str | Path | None = None):
    """A ``datasets.Dataset`` of ``rows``; with ``cache_dir`` it is saved there and memory-mapped back.

    A dataset backed by files gets deterministic cache files next to them (tokenisation, reference log-probs), so
    every rank of a multi-process run and a resumed run reuse them; an in-memory dataset would write its caches
    to a per-process temp directory that other ranks cannot see.
    """
    from datasets import Dataset, load_from_disk

    from wsteer.io import atomic_directory

    dataset = Dataset.from_list(rows)
    if cache_dir is None:
        return dataset
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        with atomic_directory(cache_dir) as tmp:
            dataset.save_to_disk(str(tmp))
    return load_from_disk(str(cache_dir))
