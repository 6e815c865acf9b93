"""``wsteer pairs generate``: answer every task prompt twice — cho under the pos-persona system prompt, rej under the
neg one — with the same sampling seed for both sides, so the persona is the only difference between them.

Both sides of a prompt are adjacent rows of one batch (left-padded by :class:`wsteer.generation.HFBackend`, which
samples each row from its own seeded noise: equal seeds mean common random numbers). Output is an append-only JSONL
log (:class:`wsteer.io.JsonlAppendLog`): each finished pair is one fsynced line, a rerun skips the prompts already
in the file and never rewrites a finished line, and a torn last line left by a kill is cut off on reopen.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wsteer.pairs.personas import PersonaPair, Template, check_form, find_by_id, load_pairs, load_templates

from wsteer.chat import PERSONA_SLOT, persona_messages
from wsteer.config import option
from wsteer.errors import ConfigError, DataError
from wsteer.generation import GenerationBackend, GenerationRequest, SamplingConfig, derive_seed
from wsteer.io import JsonlAppendLog
from wsteer.leak import VocabularyFilter
from wsteer.models import ModelConfig
from wsteer.prompts import PromptSource, TaskPrompt, resolve_prompts, suite_path
from wsteer.vllm_engine import VLLMOptions

DEFAULT_CONFIG = "configs/generate.yaml"
STAGE = "pairs.generate"
# Fields that must agree between an existing output file and this run for a rerun to append to it.
RESUME_KEYS = ("pos", "neg", "template", "model", "sampling")


@dataclass
class PairSource:
    """Which persona pair: a pairs file and an id, or the two personas inline."""

    file: str | None = option(None, "Persona pairs file (YAML or JSONL), e.g. pairs/library/pairs.yaml.")
    id: str | None = option(
        None, "Pair id within `file` (may be omitted when the file holds one pair); a label for inline pairs."
    )
    pos: str | None = option(None, "Inline positive persona, e.g. 'honest' (instead of file + id).")
    neg: str | None = option(None, "Inline negative persona, e.g. 'dishonest' (instead of file + id).")


@dataclass
class TemplateSource:
    """Which system-prompt template: a templates file and an id, or the text inline."""

    file: str | None = option(None, "Templates file (YAML or JSONL).")
    id: str | None = option(None, "Template id within `file`; a label for an inline template.")
    text: str | None = option(
        None, 'Inline template with one {persona} slot, e.g. "Pretend you\'re a {persona} person."'
    )
    form: Literal["adjective", "clause"] | None = option(
        None, "Persona form the inline template takes (default: inferred from the text)."
    )


@dataclass
class GenerateConfig:
    """One generation round: a persona pair x a template x a prompt suite on one model."""

    pair: PairSource = option(help="The persona pair.", factory=lambda: PairSource(pos="honest", neg="dishonest"))
    template: TemplateSource = option(
        help="The system-prompt template.", factory=lambda: TemplateSource(text="Pretend you're a {persona} person.")
    )
    prompts: PromptSource = option(help="The task prompts.", factory=PromptSource)
    model: ModelConfig = option(help="The model that answers (the model you will steer).", factory=ModelConfig)
    sampling: SamplingConfig = option(
        help="Decoding settings, identical for both sides.",
        factory=lambda: SamplingConfig(max_new_tokens=128, temperature=0.7),
    )
    backend: Literal["hf", "vllm"] = option(
        "hf", "Generation engine: 'hf' (transformers generate) or 'vllm' (in process, or vllm.server_url)."
    )
    vllm: VLLMOptions = option(help="vLLM engine settings (backend: vllm).", factory=VLLMOptions)
    n_per_prompt: int = option(1, "Answer pairs per prompt, each with its own seed.")
    seed: int = option(0, "Base seed; each (prompt, sample) gets a seed derived from it, shared by both sides.")
    batch_size: int = option(16, "Rows per generate call; pos and neg of a prompt are adjacent rows, so even.")
    vocabulary: VocabularyFilter = option(help="Persona-vocabulary logits processor.", factory=VocabularyFilter)
    out: str = option(
        "runs/honest/pairs/raw.jsonl",
        "Output JSONL (append-only; a rerun resumes it). The run record goes to <stem>.run/ beside it.",
    )

    def __post_init__(self) -> None:
        if self.n_per_prompt < 1:
            raise ValueError(f"n_per_prompt must be >= 1, got {self.n_per_prompt}")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(
                f"batch_size must be an even number >= 2 (pos and neg rows share a batch), got {self.batch_size}"
            )


@dataclass
class GenerateResult:
    """What a run did."""

    out: Path
    run_dir: Path
    written: int
    skipped: int
    total: int
    seconds: float


# --------------------------------------------------------------------------------------------- inputs
def resolve_pair(source: PairSource) -> PersonaPair:
    """The persona pair named by ``source`` (file + id, or inline pos/neg)."""
    inline = source.pos is not None or source.neg is not None
    if source.file and inline:
        raise ConfigError(
            "pair has both a file and inline personas",
            where="pair",
            fix="set either pair.file (+ pair.id) or pair.pos and pair.neg",
        )
    if source.file:
        return find_by_id(load_pairs(source.file), source.id, "pair", source.file)
    if not (source.pos and source.neg and source.pos.strip() and source.neg.strip()):
        raise ConfigError(
            "no persona pair given",
            where="pair",
            fix="set pair.pos and pair.neg (e.g. honest / dishonest), or pair.file and pair.id",
        )
    return PersonaPair(id=source.id or "inline", pos=source.pos.strip(), neg=source.neg.strip(), where="pair")


def resolve_template(source: TemplateSource) -> Template:
    """The template named by ``source`` (file + id, or inline text)."""
    if source.file and source.text:
        raise ConfigError(
            "template has both a file and inline text",
            where="template",
            fix="set either template.file (+ template.id) or template.text",
        )
    if source.file:
        return find_by_id(load_templates(source.file), source.id, "template", source.file)
    if not source.text:
        raise ConfigError(
            "no template given",
            where="template",
            fix='set template.text (e.g. "Pretend you\'re a {persona} person.") or template.file',
        )
    if source.text.count(PERSONA_SLOT) != 1:
        raise ConfigError(
            f"template.text needs exactly one {PERSONA_SLOT} slot, found {source.text.count(PERSONA_SLOT)}",
            where="template.text",
            fix=f"write one {PERSONA_SLOT} where the persona goes",
        )
    return Template(id=source.id or "inline", text=source.text, form=source.form, where="template.text")


def record_id(prompt_id: str, sample: int, n_per_prompt: int) -> str:
    """The pair record id: the prompt id, suffixed ``#k`` when there are several samples per prompt."""
    return prompt_id if n_per_prompt == 1 else f"{prompt_id}#{sample}"


def run_dir_for(out: str | Path) -> Path:
    """Where a stage's run record (config.yaml, manifest.json) goes: ``<stem>.run/`` beside its output."""
    out = Path(out)
    return out.with_name(out.stem + ".run")


# --------------------------------------------------------------------------------------------- backend
def make_backend(cfg: GenerateConfig) -> GenerationBackend:
    """Load the model and tokenizer and wrap them in the configured backend."""
    from wsteer.chat import require_chat_template
    from wsteer.generation import HFBackend
    from wsteer.models import load_model, load_tokenizer

    if cfg.backend not in ("hf", "vllm"):  # the Literal already restricts this; kept for backends added later
        raise ConfigError(f"unknown backend {cfg.backend!r}", where="backend", fix="use 'hf' or 'vllm'")
    tokenizer = load_tokenizer(cfg.model)
    require_chat_template(tokenizer)  # before the (slow) model load and before anything is written
    if cfg.backend == "vllm":
        from wsteer.models import resolve_model_path
        from wsteer.vllm_engine import make_vllm_backend

        path = resolve_model_path(cfg.model.name, cfg.model.revision, cfg.model.allow_pickle)
        return make_vllm_backend(path, tokenizer, cfg.vllm)
    model = load_model(cfg.model)
    return HFBackend(model, tokenizer, batch_size=cfg.batch_size)


def _vocabulary_hook(cfg: GenerateConfig, pair: PersonaPair, backend: GenerationBackend):
    if cfg.vocabulary.mode == "off":
        return None
    from wsteer.leak import PersonaVocabularyProcessor

    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        raise ConfigError(
            f"backend {backend.name!r} does not expose a tokenizer for the vocabulary filter",
            where="vocabulary.mode",
            fix="set vocabulary.mode: off for this backend",
        )

    def processors(batch):
        return [
            PersonaVocabularyProcessor.for_personas(
                tokenizer,
                [(pair.pos, pair.neg)] * len(batch),
                extra_terms=cfg.vocabulary.extra_terms,
                mode=cfg.vocabulary.mode,
                penalty=cfg.vocabulary.penalty,
            )
        ]

    return processors


# --------------------------------------------------------------------------------------------- run
def _check_resumable(log: JsonlAppendLog, expected: dict[str, Any], cfg: GenerateConfig) -> None:
    """Refuse to append to a file written with another pair, template, model, sampling or seed."""
    for number, record in enumerate(log.records, start=1):
        for key in RESUME_KEYS:
            if record.get(key) != expected[key]:
                raise DataError(
                    f"{log.path} was generated with a different {key} ({record.get(key)!r}, this run "
                    f"has {expected[key]!r}), so this run cannot resume it",
                    where=f"{log.path}:{number}",
                    fix="set out to a new file, or delete the old one to start over",
                )
        prompt_id, sample = record.get("prompt_id"), record.get("sample", 0)
        if prompt_id is not None and record.get("seed") != derive_seed(cfg.seed, prompt_id, sample):
            raise DataError(
                f"{log.path} was generated with another base seed",
                where=f"{log.path}:{number}",
                fix="set seed to the one in its run record, or write to a new file",
            )


def generate_pairs(
    cfg: GenerateConfig, backend: GenerationBackend | None = None, progress: bool = True
) -> GenerateResult:
    """Run one generation round (resuming ``cfg.out`` if it exists) and write its run record.

    Args:
        cfg: the round's config.
        backend: an already-loaded backend (default: load ``cfg.model`` into an :class:`HFBackend`).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    started = time.time()
    pair, template = resolve_pair(cfg.pair), resolve_template(cfg.template)
    check_form(template, pair)
    prompts = resolve_prompts(cfg.prompts)
    out, run_dir = Path(cfg.out), run_dir_for(cfg.out)
    expected = {
        "pos": pair.pos,
        "neg": pair.neg,
        "template": template.text,
        "model": cfg.model.name,
        "sampling": dataclasses.asdict(cfg.sampling),
    }
    todo = [(prompt, k) for prompt in prompts for k in range(cfg.n_per_prompt)]
    if backend is None and not out.exists():
        # Load the model before anything is written: a missing or unloadable model must leave no output behind.
        backend = make_backend(cfg)
    with JsonlAppendLog(out) as log:
        _check_resumable(log, expected, cfg)
        done = {record.get("id") for record in log.records}
        pending = [(p, k) for p, k in todo if record_id(p.id, k, cfg.n_per_prompt) not in done]
        skipped = len(todo) - len(pending)
        record_extra = {
            "out": str(out),
            "pair_id": pair.id,
            "template_id": template.id,
            "prompts": len(prompts),
            "pairs_total": len(todo),
            "pairs_resumed": skipped,
        }
        _write_record(cfg, {**record_extra, "status": "running"})
        if pending and backend is None:
            backend = make_backend(cfg)
        bar = tqdm(total=len(todo), initial=skipped, desc="pairs generate", unit="pair", disable=not progress)
        with bar:
            _generate_pending(backend, pending, log, pair, template, expected, cfg, bar.update)
    seconds = time.time() - started
    _write_record(
        cfg, {**record_extra, "status": "finished", "pairs_written": len(pending), "seconds": round(seconds, 2)}
    )
    return GenerateResult(out, run_dir, written=len(pending), skipped=skipped, total=len(todo), seconds=seconds)


def _write_record(cfg: GenerateConfig, extra: dict[str, Any]) -> None:
    """The round's run record (config, manifest, status) in ``<stem>.run/``."""
    from wsteer.manifest import write_run_record

    sources = (("prompts", _suite_path(cfg.prompts.suite)), ("pairs", cfg.pair.file), ("templates", cfg.template.file))
    inputs = {role: path for role, path in sources if path}
    launch = f"wsteer pairs generate --config {run_dir_for(cfg.out) / 'config.yaml'}"
    write_run_record(
        run_dir_for(cfg.out), STAGE, cfg, seeds={"base": cfg.seed}, inputs=inputs, extra=extra, launch=launch
    )


def _pair_requests(chunk: list[tuple[TaskPrompt, int]], pair: PersonaPair, template: Template, cfg: GenerateConfig):
    """cho (pos persona) and rej (neg persona) of each (prompt, sample) as adjacent rows with one shared seed."""
    return [
        GenerationRequest(
            persona_messages(prompt.prompt, template.text, persona),
            seed=derive_seed(cfg.seed, prompt.id, k),
            tag=(prompt, k, side),
        )
        for prompt, k in chunk
        for side, persona in (("cho", pair.pos), ("rej", pair.neg))
    ]


def _generate_pending(
    backend: GenerationBackend,
    pending: list[tuple[TaskPrompt, int]],
    log: JsonlAppendLog,
    pair: PersonaPair,
    template: Template,
    expected: dict[str, Any],
    cfg: GenerateConfig,
    advance,
) -> None:
    """Answer every pending (prompt, sample) on both sides and append each finished pair to ``log``."""
    hook = _vocabulary_hook(cfg, pair, backend) if pending else None
    per_call = max(1, cfg.batch_size // 2)  # prompts per generate call: 2 rows each
    for start in range(0, len(pending), per_call):
        chunk = pending[start : start + per_call]
        answers = backend.generate(_pair_requests(chunk, pair, template, cfg), cfg.sampling, logits_processors=hook)
        for cho, rej in zip(answers[::2], answers[1::2]):
            prompt, k, _ = cho.request.tag
            log.append(_pair_line(prompt, k, cho, rej, pair, template, expected, cfg))
        advance(len(chunk))


def _pair_line(
    prompt: TaskPrompt,
    sample: int,
    cho,
    rej,
    pair: PersonaPair,
    template: Template,
    expected: dict[str, Any],
    cfg: GenerateConfig,
) -> dict[str, Any]:
    """One raw.jsonl line (the PairRecord fields plus provenance)."""
    return {
        "id": record_id(prompt.id, sample, cfg.n_per_prompt),
        "prompt": prompt.prompt,
        "cho": cho.text,
        "rej": rej.text,
        "pos": pair.pos,
        "neg": pair.neg,
        "template": template.text,
        "model": expected["model"],
        "seed": cho.request.seed,
        "sampling": expected["sampling"],
        "domain": prompt.domain,
        "finish": {"cho": cho.finish_reason, "rej": rej.finish_reason},
        "prompt_id": prompt.id,
        "sample": sample,
        "pair_id": pair.id,
        "template_id": template.id,
    }


def _suite_path(suite: str) -> str:
    return str(suite_path(suite))
