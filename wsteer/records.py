"""Data contracts between stages: the pair record (pairs -> train, eval) and ``steering.json`` (train -> adapters,
eval). Stages exchange files, so these schemas are the whole interface; each is checked when read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsteer.errors import DataError
from wsteer.io import check_record, read_json, write_json

STEERING_FILE = "steering.json"


@dataclass
class PairRecord:
    """One line of raw.jsonl / curated.jsonl: a prompt answered under the pos persona (cho) and the neg one (rej).

    ``prompt`` is the task prompt *without* the persona; the persona only ever appears in the system prompt used
    to generate, recorded in ``pos``/``neg``/``template``. ``finish`` says whether each side ended on its own ("stop")
    or hit max_new_tokens ("length"). Curated records add ``curation`` provenance. Extra keys are allowed.

    The persona fields are optional: pairs read from TRL's preference format or a Hugging Face dataset have none
    (see :mod:`wsteer.pair_sources`), and the steps that need them ask for them (``wsteer train pair.pos=…``,
    ``wsteer eval sweep pos=…``). ``messages``, when present, is the whole prompt conversation (a system turn or
    several turns), of which ``prompt`` is the last user turn.
    """

    id: str
    prompt: str
    cho: str
    rej: str
    pos: str | None = None
    neg: str | None = None
    template: str | None = None
    model: str = ""
    seed: int = 0
    sampling: dict = field(default_factory=dict)
    domain: str | None = None
    finish: dict | None = None  # why each side stopped: {"cho": "stop" | "length", "rej": ...}
    curation: dict | None = None
    messages: list[dict] | None = None  # the whole prompt conversation, when it is more than one user turn


@dataclass
class SteeringInfo:
    """``steering.json`` beside a trained adapter (or a merged checkpoint): what it steers and how it was made.

    ``pos`` / ``neg`` / ``template`` are null when the training data named no personas (TRL-format or hub data
    without ``pair.*`` keys); ``provenance["persona"]`` then says so and how to supply them.
    """

    pos: str | None
    neg: str | None
    template: str | None
    objective: str
    base_model: str
    base_hash: str | None = None
    data_sha256: str | None = None
    train_config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    calibrated_alpha: dict | None = None
    versions: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)


def read_steering_info(directory: str | Path) -> SteeringInfo | None:
    """Read ``steering.json`` from an adapter or checkpoint directory; None if the directory has none."""
    path = Path(directory) / STEERING_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError("steering.json must hold a JSON object", where=str(path), fix="regenerate it")
    check_record(SteeringInfo, data, str(path))
    known = {f.name for f in dataclasses.fields(SteeringInfo)}
    return SteeringInfo(**{k: v for k, v in data.items() if k in known})


def write_steering_info(directory: str | Path, info: SteeringInfo) -> Path:
    """Write ``steering.json`` atomically into ``directory``."""
    return write_json(Path(directory) / STEERING_FILE, dataclasses.asdict(info))


def update_steering_info(directory: str | Path, **changes: Any) -> SteeringInfo:
    """Change some fields of an existing ``steering.json`` (e.g. ``calibrated_alpha``) and rewrite it."""
    info = read_steering_info(directory)
    if info is None:
        raise DataError(
            f"no {STEERING_FILE} in {directory}",
            where=str(directory),
            fix="pass an adapter directory written by `wsteer train`",
        )
    info = dataclasses.replace(info, **changes)
    write_steering_info(directory, info)
    return info
