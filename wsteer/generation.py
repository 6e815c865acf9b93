"""Batched chat generation behind a small backend interface.

:class:`HFBackend` runs ``transformers`` ``generate`` on left-padded batches. Sampling is *per-row seeded*: each
row draws its own Gumbel noise from a generator seeded with the row's seed, and ``generate`` then takes the
argmax, which is an exact sample from the (temperature / top-k / top-p warped) distribution. Two rows with the
same seed see the same noise, so the pos- and neg-persona answers to one prompt differ only where the persona
changed the model's distribution, and a row's sample does not depend on what else is in its batch.

Callers hook in per batch: ``logits_processors(batch)`` returns extra processors (e.g. the persona-vocabulary
ban, with a persona per row) and ``batch_hook(batch)`` returns a context manager wrapped around the ``generate``
call (e.g. per-row adapter scales). :mod:`wsteer.vllm_engine` implements the same :class:`GenerationBackend` protocol
on vLLM, steering each row by its ``GenerationRequest.adapter`` instead of a batch hook.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Literal, Protocol, Sequence

from wsteer.chat import Messages, encode_prompt, pad_batch
from wsteer.config import option


@dataclass
class SamplingConfig:
    """How to decode."""

    max_new_tokens: int = option(128, "Maximum new tokens per answer.")
    temperature: float = option(0.7, "Softmax temperature; 0 decodes greedily.")
    top_p: float = option(0.95, "Nucleus sampling mass (1.0 = off).")
    top_k: int = option(0, "Keep only the k most likely tokens (0 = off).")
    repetition_penalty: float = option(1.0, "transformers repetition penalty (1.0 = off).")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class GenerationRequest:
    """One conversation to answer. ``tag`` is the caller's bookkeeping and is returned untouched."""

    messages: Messages
    seed: int = 0
    tag: Any = None
    # (adapter directory, α) this row steers with, for engines that load adapters per row (vLLM); the hf engine
    # steers through the model it was given and a batch hook instead. None = the model as loaded.
    adapter: tuple[str, float] | None = None


@dataclass
class Generation:
    """One answer."""

    text: str
    token_ids: list[int]
    finish_reason: Literal["stop", "length"]
    request: GenerationRequest = field(repr=False)


BatchProcessors = Callable[[Sequence[GenerationRequest]], list]
BatchHook = Callable[[Sequence[GenerationRequest]], ContextManager]


class GenerationBackend(Protocol):
    """What stages need from a generator. Implementations must honour per-row seeds and batch hooks."""

    name: str

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        *,
        logits_processors: BatchProcessors | None = None,
        batch_hook: BatchHook | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        """Answer every request, in order."""
        ...


class SeededGumbelSampler:
    """A logits processor that turns greedy decoding into per-row seeded sampling (Gumbel-max trick).

    It returns ``log_softmax(scores) + Gumbel noise``; the argmax of that is a sample from ``softmax(scores)``.
    Place it last, after temperature / top-k / top-p warpers (their -inf entries stay -inf).
    """

    def __init__(self, seeds: Sequence[int]):
        self.seeds = [int(s) for s in seeds]
        self._generators: list | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self._generators is None:
            self._generators = [torch.Generator(device="cpu").manual_seed(s) for s in self.seeds]
        vocab = scores.shape[-1]
        # uniform [B, V] from each row's own stream; clamp keeps log(-log(u)) finite
        uniform = torch.stack([torch.rand(vocab, generator=g) for g in self._generators])
        uniform = uniform.clamp_(1e-10, 1 - 1e-7).to(scores.device)
        gumbel = -torch.log(-torch.log(uniform))  # [B, V]
        return torch.log_softmax(scores.float(), dim=-1) + gumbel


class NucleusFilter:
    """Top-p (nucleus) filtering with the same result as ``transformers.TopPLogitsWarper``, found faster.

    Keeps, per row, the most likely tokens until their probability reaches ``top_p`` (at least one). transformers
    sorts the whole vocabulary of every row at every step, which on CPU costs as much as a third of a batched
    decode step of a small model; the nucleus almost always lies within the top few hundred tokens, so this takes
    ``topk(candidates)`` and falls back to transformers' full sort only for rows whose nucleus is larger.
    """

    def __init__(self, top_p: float, candidates: int = 1024):
        self.top_p = float(top_p)
        self.candidates = candidates

    def __call__(self, input_ids, scores):
        import torch
        from transformers import TopPLogitsWarper

        k = min(self.candidates, scores.shape[-1])
        values, indices = scores.topk(k, dim=-1)  # [B, k], descending
        probs = (values.float() - scores.float().logsumexp(-1, keepdim=True)).exp()  # [B, k]
        cumulative = probs.cumsum(-1)
        keep = (cumulative - probs) < self.top_p  # mass of the more likely tokens is still short of top_p
        keep[:, 0] = True
        filtered = torch.full_like(scores, float("-inf"))
        filtered.scatter_(1, indices, values.masked_fill(~keep, float("-inf")))
        wide = cumulative[:, -1] < self.top_p  # [B]: nucleus not inside the candidates
        if bool(wide.any()):
            filtered[wide] = TopPLogitsWarper(self.top_p)(input_ids[wide], scores[wide])
        return filtered


def sampling_processors(sampling: SamplingConfig, seeds: Sequence[int]) -> list:
    """Warpers + seeded sampler for ``sampling`` (empty for greedy decoding)."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper

    if sampling.temperature == 0:
        return []
    processors: list = [TemperatureLogitsWarper(sampling.temperature)]
    if sampling.top_k > 0:
        processors.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        processors.append(NucleusFilter(sampling.top_p))
    processors.append(SeededGumbelSampler(seeds))
    return processors


def stop_token_ids(model, tokenizer) -> list[int]:
    """Token ids that end an answer: the tokenizer's EOS plus the model's configured EOS ids."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return sorted(ids)


class HFBackend:
    """Batched generation with a transformers model.

    Args:
        model: a causal LM (a peft model works too).
        tokenizer: its tokenizer; must have a chat template.
        batch_size: rows per ``generate`` call.
        max_prompt_tokens: prompts longer than this raise an error naming the request.
    """

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 16, max_prompt_tokens: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        *,
        logits_processors: BatchProcessors | None = None,
        batch_hook: BatchHook | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        """Answer every request, in order, ``batch_size`` rows per ``generate`` call."""
        from tqdm.auto import tqdm

        encoded = [
            encode_prompt(self.tokenizer, r.messages, self.max_prompt_tokens, where=f"request {i} ({_preview(r)})")
            for i, r in enumerate(requests)
        ]
        results: list[Generation] = []
        bar = tqdm(total=len(requests), desc=progress or "generate", unit="row", disable=progress is None)
        with bar:
            for start in range(0, len(requests), self.batch_size):
                batch = list(requests[start : start + self.batch_size])
                ids = encoded[start : start + self.batch_size]
                extra = list(logits_processors(batch)) if logits_processors else []
                hook = batch_hook(batch) if batch_hook else contextlib.nullcontext()
                with hook:
                    results.extend(self._generate_batch(batch, ids, sampling, extra))
                bar.update(len(batch))
        return results

    def _generate_batch(
        self, batch: list[GenerationRequest], ids: list[list[int]], sampling: SamplingConfig, extra_processors: list
    ) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        device = next(self.model.parameters()).device
        input_ids, attention_mask = pad_batch(ids, self.tokenizer.pad_token_id, side="left")  # [B, T]
        stops = stop_token_ids(self.model, self.tokenizer)
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=sampling.max_new_tokens,
            repetition_penalty=sampling.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=stops,
        )
        processors = LogitsProcessorList(extra_processors + sampling_processors(sampling, [r.seed for r in batch]))
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=config,
                logits_processor=processors,
            )
        new_tokens = out[:, input_ids.shape[1] :].tolist()  # [B, T_new]
        return [self._to_generation(request, tokens, set(stops)) for request, tokens in zip(batch, new_tokens)]

    def _to_generation(self, request: GenerationRequest, tokens: list[int], stops: set[int]) -> Generation:
        return finish_generation(self.tokenizer, request, tokens, stops)


def finish_generation(tokenizer, request: GenerationRequest, tokens: list[int], stops: set[int]) -> Generation:
    """A :class:`Generation` from new token ids: cut at the first stop token, decoded without special tokens.

    Every engine ends its answers here, so texts and token counts are comparable across engines.
    """
    finish: Literal["stop", "length"] = "length"
    for position, token in enumerate(tokens):
        if token in stops:
            tokens = tokens[:position]
            finish = "stop"
            break
    text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
    return Generation(text=text, token_ids=tokens, finish_reason=finish, request=request)


def _preview(request: GenerationRequest) -> str:
    content = request.messages[-1]["content"] if request.messages else ""
    return repr(content[:40] + ("…" if len(content) > 40 else ""))


def derive_seed(base: int, prompt_id: str, sample: int) -> int:
    """A stable 31-bit seed for one (prompt, sample): independent of order, batch and resume."""
    digest = hashlib.sha256(f"{base}:{prompt_id}:{sample}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF
