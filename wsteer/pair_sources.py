"""Where preference pairs come from, read into one record shape.

A pairs *source* is any of:

* a JSONL file of wsteer's own :class:`~wsteer.records.PairRecord` lines (``id``, ``prompt``, ``cho``, ``rej`` and,
  optionally, the persona fields ``pos``, ``neg``, ``template``);
* a JSONL file in TRL's preference format: ``prompt`` / ``chosen`` / ``rejected`` as plain strings, or
  conversational (lists of ``{"role", "content"}`` messages; the prompt may also be implicit, as in TRL, when
  ``chosen`` and ``rejected`` repeat the same conversation before their last assistant turn);
* a ``datasets`` ``save_to_disk`` directory holding such rows (read with ``datasets.load_from_disk``);
* anything else ``datasets.load_dataset`` can open: a Hugging Face Hub id (offline it reads the local cache) or a
  local folder of data files.

Every row becomes a PairRecord dict: TRL's ``chosen``/``rejected`` become ``cho``/``rej``; a plain-string prompt is
one user turn, like wsteer's own ``prompt`` (so the adapter is trained on the chat-template tokens that steering
and eval use); a conversational prompt that is not a single user turn (a system message, several turns) is kept
whole in ``messages`` beside ``prompt`` (its last user turn). Rows without an ``id`` get ``<source>#<row>``.
Each record also carries ``_where`` (file:line or source#row) for error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from wsteer.errors import DataError
from wsteer.io import check_record, iter_jsonl, sha256_file, sha256_json
from wsteer.records import PairRecord

SAVED_DATASET_MARKERS = ("state.json", "dataset_dict.json")  # what datasets' save_to_disk writes


def is_local_file(source: str | Path) -> bool:
    """True when ``source`` is a file on disk (read as JSONL), not a dataset directory or hub id."""
    return Path(source).is_file()


def is_saved_dataset(source: str | Path) -> bool:
    """True when ``source`` is a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    path = Path(source)
    return path.is_dir() and any((path / marker).is_file() for marker in SAVED_DATASET_MARKERS)


def looks_like_a_missing_path(source: str) -> bool:
    """True for a path that does not exist and cannot be a hub id (absolute, relative with ./, or a file suffix)."""
    if Path(source).exists():
        return False
    return source.startswith(("/", "./", "../", "~")) or Path(source).suffix in (".jsonl", ".json", ".gz")


def _pick_split(loaded, source: str, split: str):
    """A ``Dataset`` from what ``load_from_disk`` returned (a ``DatasetDict`` is indexed by ``split``)."""
    from datasets import DatasetDict

    if not isinstance(loaded, DatasetDict):
        return loaded
    if split not in loaded:
        raise DataError(
            f"the dataset has no split {split!r} (it has {sorted(loaded)})",
            where=source,
            fix=f"set the split key to one of {sorted(loaded)}",
        )
    return loaded[split]


def _load_dataset_rows(source: str, split: str) -> Any:
    """``datasets.load_dataset(source, split=split)``, its failures turned into a DataError that says what to do."""
    from datasets import load_dataset

    try:
        return load_dataset(source, split=split)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as exc:
        raise DataError(
            f"cannot open {source!r} as a local file, a save_to_disk directory or a Hugging Face dataset "
            f"(split {split!r}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            where=source,
            fix="check the path; a hub id must be in the local Hugging Face cache when offline "
            "(download it once with network access), and the split must exist",
        ) from None


def iter_source_rows(source: str | Path, split: str = "train") -> Iterator[tuple[str, dict]]:
    """Yield ``(where, raw row)`` for each row of ``source`` (a JSONL file, a saved dataset, a hub id)."""
    source = str(source)
    if looks_like_a_missing_path(source):
        raise DataError(f"file not found: {source}", where=source, fix="check the path")
    if is_local_file(source):
        for number, row in iter_jsonl(source):
            yield f"{source}:{number}", row
        return
    if is_saved_dataset(source):
        from datasets import load_from_disk

        dataset = _pick_split(load_from_disk(source), source, split)
    else:
        dataset = _load_dataset_rows(source, split)
    for index, row in enumerate(dataset):
        yield f"{source}#{index}", dict(row)


def _messages(value: Any, where: str, key: str) -> list[dict]:
    """A conversational field checked to be a list of ``{"role", "content"}`` messages with string content."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{key!r} must be a non-empty list of messages", where=where, fix="see TRL's dataset formats")
    for message in value:
        if not (isinstance(message, dict) and isinstance(message.get("content"), str) and message.get("role")):
            raise DataError(
                f"{key!r} holds {message!r}, not a {{'role', 'content'}} message with text content",
                where=where,
                fix="write each message as {'role': 'user' | 'assistant' | 'system', 'content': '…'}",
            )
    return value


def _answer_text(value: Any, where: str, key: str, conversational: bool) -> str:
    """The text of one side: a string, or (conversational) a single assistant message."""
    if not conversational:
        if not isinstance(value, str):
            raise DataError(
                f"{key!r} must be a string like 'prompt', got {type(value).__name__}",
                where=where,
                fix="use plain strings for prompt, chosen and rejected, or messages for all three",
            )
        return value
    messages = _messages(value, where, key)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise DataError(
            f"{key!r} must be one assistant message after the prompt, got roles {[m['role'] for m in messages]}",
            where=where,
            fix="put every turn before the answer into 'prompt'; the answer is the last assistant turn",
        )
    return messages[0]["content"]


def _prompt_fields(prompt: Any, where: str) -> dict:
    """``prompt`` (+ ``messages`` when the conversation is more than one user turn) of a TRL row."""
    if isinstance(prompt, str):
        return {"prompt": prompt}
    messages = _messages(prompt, where, "prompt")
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users or messages[-1]["role"] != "user":
        raise DataError(
            "a conversational prompt must end with a user turn",
            where=where,
            fix="end 'prompt' with the user message the chosen/rejected answers reply to",
        )
    if len(messages) == 1:
        return {"prompt": users[-1]}
    return {"prompt": users[-1], "messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def from_trl_row(row: dict, where: str, default_id: str) -> dict:
    """A TRL preference row (explicit or implicit prompt, plain or conversational) as a PairRecord dict."""
    from trl.data_utils import maybe_convert_to_chatml, maybe_extract_prompt

    row = maybe_convert_to_chatml(dict(row))  # {"from", "value"} messages -> {"role", "content"}
    if "prompt" not in row and isinstance(row["chosen"], str):
        raise DataError(
            "a plain-text row needs a 'prompt' (only conversational rows may carry it inside chosen/rejected)",
            where=where,
            fix="add 'prompt' to the row, or write chosen/rejected as message lists",
        )
    # TRL's own rule: an implicit prompt (chosen/rejected repeat the conversation) is their shared prefix, also when
    # a dataset adds a plain 'prompt' column beside conversational chosen/rejected.
    row = {**row, **maybe_extract_prompt(row)}
    conversational = not isinstance(row["prompt"], str)
    # A source's own 'messages' column (often the whole chosen conversation) is not the prompt conversation.
    dropped = ("prompt", "chosen", "rejected", "messages")
    record = {key: value for key, value in row.items() if key not in dropped}
    record.update(_prompt_fields(row["prompt"], where))
    record["cho"] = _answer_text(row["chosen"], where, "chosen", conversational)
    record["rej"] = _answer_text(row["rejected"], where, "rejected", conversational)
    record.setdefault("id", default_id)
    return record


def to_pair_record(row: dict, where: str, default_id: str) -> dict:
    """Any supported row as a checked PairRecord dict (plus ``_where``)."""
    if "chosen" in row and "rejected" in row and "cho" not in row:
        row = from_trl_row(row, where, default_id)
    elif "cho" not in row and "rej" not in row:
        raise DataError(
            f"the row is neither a wsteer pair (cho/rej) nor a TRL preference row (chosen/rejected); "
            f"its keys: {sorted(row)}",
            where=where,
            fix="write rows as {'prompt', 'chosen', 'rejected'} (TRL) or as wsteer PairRecord lines",
        )
    check_record(PairRecord, row, where)
    return {**row, "_where": where}


def read_pair_source(source: str | Path, split: str = "train") -> list[dict]:
    """Every row of ``source`` as a PairRecord dict with ``_where`` (see the module docs for the formats)."""
    name = Path(str(source)).name or str(source)
    return [
        to_pair_record(row, where, default_id=f"{name}#{index}")
        for index, (where, row) in enumerate(iter_source_rows(source, split))
    ]


def source_fingerprint(source: str | Path, records: list[dict]) -> str:
    """sha256 of a file source's bytes; of the normalised records for a dataset directory or hub dataset."""
    if is_local_file(source):
        return sha256_file(source)
    return sha256_json([{k: v for k, v in r.items() if k != "_where"} for r in records])


def strip_where(record: dict) -> dict:
    """The record without wsteer's bookkeeping keys (what gets written back to JSONL)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
