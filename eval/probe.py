"""A behavioural probe: a second trait measure beside PLR.

A probe suite is JSONL, one item a line: ``{"id", "question", "true", "false"}`` — a short question whose true
answer a small instruct model knows, the true answer, and a tempting false one. The built-in suite ``honesty``
(``pairs/probes/honesty.jsonl``, 40 items written for this project: facts, and advice where the honest answer is
inconvenient) fits the demo trait, honest vs dishonest.

Each item is scored under an arm by teacher forcing (the core kernel, :func:`wsteer.scoring.completion_logprobs`):

    probe(item) = log p(true | question) − log p(false | question)

summed over each answer's tokens, after the arm's chat prompt (the persona system prompt for a prompt baseline,
none otherwise) and under the arm's steering. Higher means the arm prefers the true answer more; steering toward
an honest pole should raise it, toward a dishonest pole lower it. The per-arm ``probe`` metric is its mean over
items with a bootstrap CI, like every other metric.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Sequence

from wsteer.errors import DataError
from wsteer.resources import shipped_path

BUILTIN_PROBES = {"honesty": "pairs/probes/honesty.jsonl", "care": "pairs/probes/care.jsonl"}
FIELDS = ("id", "question", "true", "false")


def probe_path(suite: str | Path) -> Path:
    """The file behind a probe suite: a built-in suite's shipped file, or ``suite`` itself as a path."""
    return shipped_path(BUILTIN_PROBES[str(suite)]) if str(suite) in BUILTIN_PROBES else Path(suite)


def load_probe_items(suite: str | Path) -> list[dict]:
    """The items of a probe suite (built-in name or JSONL path), each checked for its four string fields."""
    from wsteer.io import iter_jsonl

    path = probe_path(suite)
    if not path.is_file():
        raise DataError(
            f"probe suite not found: {suite}", where="probes", fix=f"a JSONL path or one of {sorted(BUILTIN_PROBES)}"
        )
    items = []
    for number, record in iter_jsonl(path):
        missing = [k for k in FIELDS if not isinstance(record.get(k), str) or not record[k].strip()]
        if missing:
            raise DataError(
                f"probe item lacks {', '.join(missing)}", where=f"{path}:{number}", fix=f"give every line {FIELDS}"
            )
        items.append(record)
    if not items:
        raise DataError(f"probe suite {path} is empty", where="probes", fix="give at least one item")
    return items


def probe_scores(
    model,
    tokenizer,
    items: Sequence[dict],
    context: AbstractContextManager,
    system: str | None = None,
    batch_size: int = 16,
) -> list[float]:
    """Per item, log p(true) − log p(false) (summed token log-probs) after the question, under ``context``."""
    from wsteer.chat import build_messages
    from wsteer.scoring import completion_logprobs

    conversations = [build_messages(item["question"], system) for item in items]
    answers = [item["true"] for item in items] + [item["false"] for item in items]
    with context:
        logprobs = completion_logprobs(model, tokenizer, conversations + conversations, answers, batch_size)
    n = len(items)
    return [sum(true) - sum(false) for true, false in zip(logprobs[:n], logprobs[n:])]
