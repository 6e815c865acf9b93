"""Asking another language model: an OpenAI-compatible endpoint or a local Hugging Face model.

Used by the lint's second opinion (``wsteer.pairs.second_opinion``) and eval's pairwise judge
(``wsteer.eval.judge``). The
endpoint client is standard-library ``urllib`` (no SDK). The API key is read from the environment variable *named*
by ``api_key_env``: configs, outputs and error messages hold only that name, and any echo of the key in a reply or
an error body is redacted before it is kept.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wsteer.chat import Messages
from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.models import ModelConfig


@dataclass
class LLMConfig:
    """Which model to ask: an OpenAI-compatible endpoint or a local model."""

    backend: Literal["openai", "hf"] = option(
        "openai",
        "'openai': an OpenAI-compatible chat-completions endpoint; 'hf': a local model through the shared loader.",
    )
    base_url: str = option("http://localhost:8000/v1", "API root of the endpoint; '/chat/completions' is appended.")
    model: str = option("", "Model name sent to the endpoint (backend 'openai').")
    api_key_env: str | None = option(
        "OPENAI_API_KEY",
        "NAME of the environment variable that holds the API key "
        "(the key itself never goes in a config or an output); "
        "null sends no Authorization header.",
    )
    local: ModelConfig = option(help="Local model to ask (backend 'hf').", factory=ModelConfig)
    max_tokens: int = option(300, "Longest reply to ask for.")
    timeout_s: float = option(60.0, "Seconds to wait for one reply.")

    def describe(self) -> str:
        """A short label of the model asked, for reports (never includes the key)."""
        if self.backend == "hf":
            return f"hf:{self.local.name}"
        return f"openai:{self.model or '(default)'}@{self.base_url}"


def api_key(cfg: LLMConfig, where: str = "api_key_env") -> str | None:
    """The key from the environment variable named by ``cfg.api_key_env`` (None if no variable is named)."""
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise WsteerError(
            f"environment variable {cfg.api_key_env} is not set",
            where=where,
            fix=f"export {cfg.api_key_env}=… before running, or set api_key_env: null for an "
            "endpoint that needs no key",
        )
    return key


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``[redacted]``."""
    return text.replace(secret, "[redacted]") if secret else text


def ask_openai(messages: Messages, cfg: LLMConfig, purpose: str = "LLM") -> str:
    """The assistant reply of an OpenAI-compatible ``/chat/completions`` endpoint (key redacted from it)."""
    key = api_key(cfg, where=f"{purpose}.api_key_env")
    url = cfg.base_url.rstrip("/") + "/chat/completions"
    body = json.dumps(
        {"model": cfg.model, "messages": messages, "temperature": 0, "max_tokens": cfg.max_tokens}
    ).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = redact(exc.read().decode("utf-8", "replace")[:200], key)
        raise WsteerError(
            f"{purpose} endpoint answered HTTP {exc.code}: {detail}",
            where=url,
            fix=f"check {purpose}.base_url, model and the key variable's value",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = redact(str(getattr(exc, "reason", exc)), key)
        raise WsteerError(
            f"{purpose} endpoint unreachable: {reason}",
            where=url,
            fix=f"start the server or correct {purpose}.base_url",
        ) from None
    except json.JSONDecodeError:
        raise WsteerError(
            f"{purpose} endpoint did not answer JSON",
            where=url,
            fix="point base_url at an OpenAI-compatible API root (usually ending in /v1)",
        ) from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise WsteerError(
            f"{purpose} reply has no choices[0].message.content",
            where=url,
            fix="point base_url at an OpenAI-compatible chat-completions API",
        ) from None
    return redact(str(content or ""), key)


def ask_local(
    conversations: Sequence[Messages], cfg: LLMConfig, model=None, tokenizer=None, progress: str | None = None
) -> list[str]:
    """Greedy replies of a local model (loaded from ``cfg.local`` unless given) to each conversation."""
    from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
    from wsteer.models import load_model, load_tokenizer

    tokenizer = tokenizer or load_tokenizer(cfg.local)
    model = model or load_model(cfg.local)
    requests = [GenerationRequest(messages) for messages in conversations]
    sampling = SamplingConfig(max_new_tokens=cfg.max_tokens, temperature=0.0)
    return [g.text for g in HFBackend(model, tokenizer).generate(requests, sampling, progress=progress)]


def ask(
    conversations: Sequence[Messages], cfg: LLMConfig, model=None, tokenizer=None, purpose: str = "LLM"
) -> list[str]:
    """Replies to each conversation from the configured backend, in order."""
    if cfg.backend == "hf":
        return ask_local(conversations, cfg, model, tokenizer, progress=purpose)
    return [ask_openai(messages, cfg, purpose) for messages in conversations]
