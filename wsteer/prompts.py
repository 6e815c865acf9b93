"""Task-prompt suites: the user turns that cho/rej answers are generated for.

A prompt is ``{id, prompt, domain}``. The built-in suite ``tasks`` (``pairs/prompts/tasks.jsonl``, 175 prompts
written for this project, 25 in each of coding, writing, advice, factual, moral, agentic, support) is the default;
users bring their own as JSONL, CSV or a local Hugging Face dataset (a ``save_to_disk`` directory, or a
``.parquet`` / ``.arrow`` file — never downloaded).

The train / held-out split is hash-based and stratified by domain: within each domain the prompts are ranked by
``sha256(salt + id)`` and the first ``round(heldout_fraction * n_domain)`` are held out. The split depends only on
the ids (not on file order), and adding one prompt to a domain moves at most one other prompt across the split.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from wsteer.config import option
from wsteer.errors import DataError
from wsteer.io import iter_jsonl
from wsteer.resources import shipped_path

# Built-in suites ship in the pairs stage's folder (pairs/prompts/); shipped_path finds them in a checkout or a wheel.
BUILTIN_SUITES = {"tasks": "pairs/prompts/tasks.jsonl"}
DEFAULT_DOMAIN = "general"
SPLIT_SALT = "wsteer-split-v1"
Split = Literal["train", "heldout", "all"]


def suite_path(suite: str | Path) -> Path:
    """The file behind a suite name: a built-in suite's shipped file, or ``suite`` itself as a path."""
    return shipped_path(BUILTIN_SUITES.get(str(suite), suite))


@dataclass(frozen=True)
class TaskPrompt:
    """One user turn to answer, with a stable id and its domain."""

    id: str
    prompt: str
    domain: str = DEFAULT_DOMAIN


# --------------------------------------------------------------------------------------------- loading
def load_prompts(
    source: str | Path,
    *,
    prompt_field: str = "prompt",
    id_field: str = "id",
    domain_field: str = "domain",
    dataset_split: str | None = None,
) -> list[TaskPrompt]:
    """Task prompts from a built-in suite name, a JSONL / CSV file, or a local Hugging Face dataset.

    Args:
        source: ``"tasks"`` (built in), ``*.jsonl``, ``*.csv``, ``*.parquet`` / ``*.arrow``, or a directory
            written by ``datasets``' ``save_to_disk``.
        prompt_field / id_field / domain_field: column names. A missing id becomes ``p-<hash of the prompt>``,
            a missing domain ``general``.
        dataset_split: which split of a saved ``DatasetDict`` (default: ``train`` when it has one).
    """
    path = suite_path(source)
    if not path.exists():
        raise DataError(
            f"prompt suite not found: {source}",
            where=str(source),
            fix=f"use a built-in suite ({', '.join(BUILTIN_SUITES)}), a .jsonl/.csv file or a local dataset directory",
        )
    if path.is_dir() or path.suffix in (".parquet", ".arrow"):
        rows = _dataset_rows(path, dataset_split)
    elif path.suffix == ".csv":
        rows = _csv_rows(path)
    elif path.suffix in (".jsonl", ".json"):
        rows = ((f"{path}:{number}", record) for number, record in iter_jsonl(path))
    else:
        raise DataError(
            f"unsupported prompt file type {path.suffix!r}",
            where=str(path),
            fix="use .jsonl, .csv, .parquet, .arrow or a save_to_disk dataset directory",
        )
    prompts = [_to_prompt(row, where, prompt_field, id_field, domain_field) for where, row in rows]
    if not prompts:
        raise DataError("the prompt suite is empty", where=str(path), fix="add at least one prompt")
    _check_unique_ids(prompts, path)
    return [prompt for prompt, _ in prompts]


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if any((value or "").strip() for value in row.values()):
                yield f"{path}:{reader.line_num}", row


def _dataset_rows(path: Path, split: str | None) -> Iterator[tuple[str, dict]]:
    """Rows of a local dataset; ``datasets`` reads only what is on disk here (no hub access)."""
    import datasets

    try:
        if path.is_dir():
            data = datasets.load_from_disk(str(path))
        elif path.suffix == ".parquet":
            data = datasets.Dataset.from_parquet(str(path))
        else:
            data = datasets.Dataset.from_file(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(
            f"cannot read a local dataset: {str(exc).splitlines()[0][:200]}",
            where=str(path),
            fix="pass a directory written by Dataset.save_to_disk, or a .parquet/.arrow file",
        ) from None
    if isinstance(data, datasets.DatasetDict):
        names = list(data)
        chosen = split or ("train" if "train" in data else None)
        if chosen not in data:
            raise DataError(
                f"dataset has splits {names}; which one holds the prompts?",
                where=str(path),
                fix="set prompts.dataset_split to one of them",
            )
        data = data[chosen]
    for index, row in enumerate(data):
        yield f"{path}[row {index}]", row


def _to_prompt(row: Any, where: str, prompt_field: str, id_field: str, domain_field: str) -> tuple[TaskPrompt, str]:
    if not isinstance(row, dict):
        raise DataError("each prompt must be an object", where=where, fix="write one {...} per line")
    text = row.get(prompt_field)
    if not isinstance(text, str) or not text.strip():
        columns = ", ".join(sorted(map(str, row))[:10])
        raise DataError(
            f"no {prompt_field!r} text (columns: {columns})",
            where=where,
            fix=f"add a non-empty {prompt_field!r} field, or set prompts.prompt_field to the "
            "column that holds the prompt",
        )
    raw_id = row.get(id_field)
    prompt_id = str(raw_id).strip() if raw_id not in (None, "") else "p-" + _digest(text.strip())[:10]
    domain = row.get(domain_field)
    domain = str(domain).strip() if domain not in (None, "") else DEFAULT_DOMAIN
    return TaskPrompt(prompt_id, text.strip(), domain), where


def _check_unique_ids(prompts: list[tuple[TaskPrompt, str]], path: Path) -> None:
    seen: dict[str, str] = {}
    for prompt, where in prompts:
        if prompt.id in seen:
            raise DataError(
                f"duplicate prompt id {prompt.id!r} (first at {seen[prompt.id]})",
                where=where,
                fix="give every prompt a unique id (or drop the id column to derive ids from text)",
            )
        seen[prompt.id] = where


# --------------------------------------------------------------------------------------------- split
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def heldout_ids(prompts: Iterable[TaskPrompt], fraction: float, salt: str = SPLIT_SALT) -> set[str]:
    """Ids of the held-out prompts: per domain, the ``round(fraction * n)`` with the smallest salted hash."""
    if not 0 <= fraction < 1:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction}")
    by_domain: dict[str, list[str]] = defaultdict(list)
    for prompt in prompts:
        by_domain[prompt.domain].append(prompt.id)
    held: set[str] = set()
    for ids in by_domain.values():
        ranked = sorted(ids, key=lambda i: _digest(salt + i))
        held.update(ranked[: round(fraction * len(ids))])
    return held


def split_prompts(
    prompts: list[TaskPrompt], split: Split, fraction: float = 0.2, salt: str = SPLIT_SALT
) -> list[TaskPrompt]:
    """The prompts of one split (``all`` = every prompt), in their original order."""
    if split == "all":
        return list(prompts)
    held = heldout_ids(prompts, fraction, salt)
    return [p for p in prompts if (p.id in held) == (split == "heldout")]


def select_prompts(
    prompts: list[TaskPrompt], domains: Iterable[str] = (), limit: int | None = None
) -> list[TaskPrompt]:
    """Keep only ``domains`` (all when empty), then the first ``limit`` prompts spread evenly over domains."""
    wanted = set(domains)
    if wanted:
        unknown = wanted - {p.domain for p in prompts}
        if unknown:
            raise DataError(
                f"no prompts in domain(s) {sorted(unknown)}",
                where="prompts.domains",
                fix=f"use some of: {', '.join(sorted({p.domain for p in prompts}))}",
            )
        prompts = [p for p in prompts if p.domain in wanted]
    if limit is None or limit >= len(prompts):
        return list(prompts)
    # round-robin over domains so a small limit still covers every domain
    queues: dict[str, list[TaskPrompt]] = defaultdict(list)
    for prompt in prompts:
        queues[prompt.domain].append(prompt)
    chosen: list[TaskPrompt] = []
    while len(chosen) < limit:
        for queue in queues.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    keep = {p.id for p in chosen}
    return [p for p in prompts if p.id in keep]


@dataclass
class PromptSource:
    """Which task prompts."""

    suite: str = option(
        "tasks",
        "Built-in suite name ('tasks'), a .jsonl/.csv/.parquet/.arrow file, or a local "
        "datasets save_to_disk directory.",
    )
    split: Literal["train", "heldout", "all"] = option(
        "train", "Hash split to use: 'train' for pair generation, 'heldout' is kept for eval."
    )
    heldout_fraction: float = option(0.2, "Share of each domain held out (stable, hash-based).")
    domains: list[str] = option(help="Only these domains (empty = all).", factory=list)
    limit: int | None = option(None, "At most this many prompts, spread evenly over domains (None = all).")
    prompt_field: str = option("prompt", "Column holding the prompt text.")
    id_field: str = option("id", "Column holding the prompt id (missing ids are derived from the text).")
    domain_field: str = option("domain", "Column holding the domain (missing = 'general').")
    dataset_split: str | None = option(None, "Split of a saved DatasetDict (default: 'train').")
    instruction: str = option(
        "",
        "Appended to every prompt after a space, e.g. 'Answer in three sentences or fewer.': a format "
        "instruction that every arm and both personas share, so answers end before max_new_tokens and length "
        "is measured, not capped. Set the same value for generation and evaluation.",
    )


def resolve_prompts(source: PromptSource) -> list[TaskPrompt]:
    """The prompts of the configured suite, split, domains and limit."""
    prompts = load_prompts(
        source.suite,
        prompt_field=source.prompt_field,
        id_field=source.id_field,
        domain_field=source.domain_field,
        dataset_split=source.dataset_split,
    )
    prompts = split_prompts(prompts, source.split, source.heldout_fraction)
    prompts = select_prompts(prompts, source.domains, source.limit)
    return [with_instruction(p, source.instruction) for p in prompts]


def with_instruction(prompt: TaskPrompt, instruction: str) -> TaskPrompt:
    """``prompt`` with ``instruction`` appended (same id and domain: the split stays the one of the bare prompt)."""
    if not instruction.strip():
        return prompt
    return dataclasses.replace(prompt, prompt=f"{prompt.prompt.rstrip()} {instruction.strip()}")
