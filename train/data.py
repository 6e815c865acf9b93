"""Curated pairs -> TRL datasets.

The pairs come from any source :mod:`wsteer.pair_sources` reads (wsteer's PairRecord JSONL, TRL's preference
format, a save_to_disk directory, a Hugging Face dataset), as PairRecord dicts whose ``prompt`` carries no persona:
the adapter has to learn the persona. Each pair becomes a *conversational* TRL example (user turn, assistant
turn), so TRL renders it through the model's chat template exactly like :func:`wsteer.chat.encode_prompt` does
for generation, scoring and eval (tests/train/test_data.py checks the token ids are identical).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wsteer.train.config import PairLabels

from wsteer.chat import build_messages
from wsteer.errors import DataError
from wsteer.pair_sources import read_pair_source, source_fingerprint


@dataclass
class PairSet:
    """The pairs of one run: what they steer (pos/neg/template, None where neither data nor config says) and the
    train / held-out records. ``persona_source``: 'data', 'config' (``pair.*`` keys) or None (unknown)."""

    pos: str | None
    neg: str | None
    template: str | None
    train: list[dict]
    heldout: list[dict]
    templates: list[str]
    persona_source: str | None = "data"
    data_sha256: str | None = None
    heldout_sha256: str | None = None


def read_pairs(source: str | Path, split: str = "train") -> list[dict]:
    """Read pairs from a JSONL file (wsteer or TRL format), a save_to_disk directory or a hub dataset; errors name
    file:line (or source#row). Empty prompt/cho/rej and empty sources are refused."""
    records = read_pair_source(source, split)
    for record in records:
        for side in ("prompt", "cho", "rej"):
            if not record[side].strip():
                raise DataError(
                    f"field {side!r} is empty",
                    where=record["_where"],
                    fix="drop the pair or regenerate it (wsteer pairs curate drops empty answers)",
                )
    if not records:
        raise DataError(
            "the pairs file holds no pairs",
            where=str(source),
            fix="point `data` at curated.jsonl from `wsteer pairs curate`",
        )
    return records


def prompt_key(record: dict) -> str:
    """What identifies a record's prompt: the whole conversation when it has one, else the prompt text."""
    return json.dumps(record["messages"], sort_keys=True) if record.get("messages") else record["prompt"]


def split_heldout(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out ``fraction`` of the *prompts* (all pairs of a prompt go to one side), chosen with ``seed``."""
    if fraction <= 0:
        return records, []
    prompts = sorted({prompt_key(r) for r in records})
    random.Random(seed).shuffle(prompts)
    n_heldout = max(1, round(fraction * len(prompts))) if len(prompts) > 1 else 0
    heldout_prompts = set(prompts[:n_heldout])
    return (
        [r for r in records if prompt_key(r) not in heldout_prompts],
        [r for r in records if prompt_key(r) in heldout_prompts],
    )


def _data_persona(records: list[dict], key: str) -> str | None:
    """The one ``pos`` (or ``neg``) all records share; refuses a file that mixes persona pairs."""
    first = records[0]
    for record in records:
        if record.get(key) != first.get(key):
            raise DataError(
                f"{key} persona {record.get(key)!r} differs from {first.get(key)!r} ({first['_where']}); "
                "one adapter steers one persona pair",
                where=record["_where"],
                fix="train one adapter per persona pair (split the file by pos/neg)",
            )
    return first.get(key)


def resolve_personas(records: list[dict], labels: PairLabels | None) -> tuple[dict, str | None]:
    """pos / neg / template from the data, else from the ``pair.*`` keys; a disagreement between them is an error.
    Returns the values and where they came from ('data', 'config' or None)."""
    labels = labels or PairLabels()
    templates = Counter(r["template"] for r in records if r.get("template"))
    from_data = {
        "pos": _data_persona(records, "pos"),
        "neg": _data_persona(records, "neg"),
        "template": templates.most_common(1)[0][0] if templates else None,
    }
    resolved = {}
    for key, value in from_data.items():
        given = getattr(labels, key)
        if value is not None and given is not None and value != given:
            raise DataError(
                f"pair.{key}={given!r} disagrees with the data's {key} {value!r}",
                where=f"pair.{key}",
                fix=f"drop pair.{key} (the data names it) or fix the data",
            )
        resolved[key] = value if value is not None else given
    source = "data" if from_data["pos"] else ("config" if resolved["pos"] else None)
    return resolved, source


def load_pair_set(
    data: str | Path,
    heldout: str | Path | None,
    heldout_fraction: float,
    seed: int,
    split: str = "train",
    heldout_split: str = "test",
    labels: PairLabels | None = None,
) -> PairSet:
    """Read the training pairs (and held-out pairs, or split them off) and check they steer one persona pair."""
    records = read_pairs(data, split)
    held_records = read_pairs(heldout, heldout_split) if heldout is not None else None
    if held_records is not None:
        train, held = records, held_records
    else:
        train, held = split_heldout(records, heldout_fraction, seed)
    if not train:
        raise DataError(
            "no training pairs left after the held-out split",
            where=str(data),
            fix="add pairs or lower heldout_fraction",
        )
    personas, source = resolve_personas(train + held, labels)
    return PairSet(
        **personas,
        train=train,
        heldout=held,
        templates=sorted({r["template"] for r in train if r.get("template")}),
        persona_source=source,
        data_sha256=source_fingerprint(data, records),
        heldout_sha256=source_fingerprint(heldout, held_records) if held_records is not None else None,
    )


def prompt_messages(record: dict) -> list[dict]:
    """The prompt as TRL's conversational format: the record's conversation, or its prompt as one user turn (no
    persona, no system prompt)."""
    return record.get("messages") or build_messages(record["prompt"])


def _assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def preference_rows(records: list[dict]) -> list[dict]:
    """TRL conversational preference rows: ``{"prompt": [user], "chosen": [assistant], "rejected": [assistant]}``."""
    return [
        {"prompt": prompt_messages(r), "chosen": _assistant_turn(r["cho"]), "rejected": _assistant_turn(r["rej"])}
        for r in records
    ]


def completion_rows(records: list[dict], side: str) -> list[dict]:
    """TRL conversational prompt-completion rows for SFT on one side ('cho' or 'rej')."""
    return [{"prompt": prompt_messages(r), "completion": _assistant_turn(r[side])} for r in records]


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
