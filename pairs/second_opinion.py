"""A second opinion on the mirror test from a language model (off by default).

The seed's advice: "don't grade your own pair from memory … hand them to a second model with just this test". This
module asks either an OpenAI-compatible chat-completions endpoint (standard-library ``urllib``, no SDK) or a local
Hugging Face model (through the shared loader) whether a pair is mirrored, and turns a "fail" into a lint finding.

The API key is read from the environment variable *named* by ``api_key_env``; the config, the outputs and the
error messages hold only that name, and any echo of the key in a response is redacted before it is kept.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal, Sequence

from pairs.lint import Finding, LintReport
from wsteer.chat import Messages
from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.models import ModelConfig

RULE = "second-opinion"

SYSTEM_PROMPT = (
    "You review persona pairs used to steer language models. The steering direction is the average difference "
    "between text written as the POS persona and text written as the NEG persona, so anything that differs "
    "between the two descriptions other than the intended pole becomes part of the direction.")

MIRROR_TEST = """Apply the mirror test to this persona pair.

POS: {pos}
NEG: {neg}

The test: every clause or phrase in POS needs a counterpart in NEG that describes the same situation with only
the pole flipped, and the other way round. It fails when one side has content with no counterpart (for example a
reason, a condition or a detail only one side gives, or two different reasons such as "because X is faster" vs
"because Y is simpler"), when NEG is merely the absence or negation of POS, or when the sides differ in more than
one independent way. Swapping which of two shared concerns comes first is a valid mirror.

Answer with JSON only, no other text:
{{"verdict": "pass" or "fail", "unmirrored": ["phrases with no counterpart"], "reason": "one sentence"}}"""


@dataclass
class SecondOpinionConfig:
    """Where to ask for a second opinion and how to treat it."""

    backend: Literal["openai", "hf"] = option("openai", "'openai': an OpenAI-compatible chat-completions "
                                                        "endpoint; 'hf': a local model through the shared loader.")
    base_url: str = option("http://localhost:8000/v1", "API root of the endpoint; '/chat/completions' is appended.")
    model: str = option("", "Model name sent to the endpoint (backend 'openai').")
    api_key_env: str | None = option("OPENAI_API_KEY", "NAME of the environment variable that holds the API key "
                                                       "(the key itself never goes in a config or an output); "
                                                       "null sends no Authorization header.")
    local: ModelConfig = option(help="Local model to ask (backend 'hf').", factory=ModelConfig)
    max_tokens: int = option(300, "Longest reply to ask for.")
    timeout_s: float = option(60.0, "Seconds to wait for one reply.")
    severity: Literal["warning", "error"] = option("warning", "Severity of the finding when the second opinion "
                                                              "says the pair fails the mirror test.")


def mirror_test_messages(pos: str, neg: str) -> Messages:
    """The conversation that asks a model for the mirror test of one pair."""
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": MIRROR_TEST.format(pos=pos.strip(), neg=neg.strip())}]


def parse_verdict(text: str) -> dict:
    """``{"verdict": pass|fail|unclear, "unmirrored": [...], "reason": str}`` from a model's reply.

    Takes the first JSON object in the reply; failing that, a bare "pass"/"fail" word; otherwise "unclear".
    """
    for match in re.finditer(r"\{.*?\}", text, flags=re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        verdict = str(data.get("verdict", "")).strip().lower()
        if verdict in ("pass", "fail"):
            unmirrored = data.get("unmirrored") or []
            return {"verdict": verdict, "unmirrored": [str(u) for u in unmirrored][:10] if isinstance(
                unmirrored, list) else [str(unmirrored)], "reason": str(data.get("reason", ""))[:500]}
    words = set(re.findall(r"\b(pass|fail)\b", text.lower()))
    if len(words) == 1:
        return {"verdict": words.pop(), "unmirrored": [], "reason": text.strip()[:500]}
    return {"verdict": "unclear", "unmirrored": [], "reason": text.strip()[:500]}


def _api_key(cfg: SecondOpinionConfig) -> str | None:
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise WsteerError(f"environment variable {cfg.api_key_env} is not set", where="second_opinion.api_key_env",
                          fix=f"export {cfg.api_key_env}=… before running, or set api_key_env: null for an "
                              "endpoint that needs no key")
    return key


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def ask_openai(messages: Messages, cfg: SecondOpinionConfig) -> str:
    """The assistant reply from an OpenAI-compatible ``/chat/completions`` endpoint (key redacted from it)."""
    key = _api_key(cfg)
    url = cfg.base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": cfg.model, "messages": messages, "temperature": 0,
                       "max_tokens": cfg.max_tokens}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = _redact(exc.read().decode("utf-8", "replace")[:200], key)
        raise WsteerError(f"second-opinion endpoint answered HTTP {exc.code}: {detail}", where=url,
                          fix="check second_opinion.base_url, model and the key variable's value") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = _redact(str(getattr(exc, "reason", exc)), key)
        raise WsteerError(f"second-opinion endpoint unreachable: {reason}", where=url,
                          fix="start the server or correct second_opinion.base_url") from None
    except json.JSONDecodeError:
        raise WsteerError("second-opinion endpoint did not answer JSON", where=url,
                          fix="point base_url at an OpenAI-compatible API root (usually ending in /v1)") from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise WsteerError("second-opinion reply has no choices[0].message.content", where=url,
                          fix="point base_url at an OpenAI-compatible chat-completions API") from None
    return _redact(str(content or ""), key)


def ask_local(conversations: Sequence[Messages], cfg: SecondOpinionConfig, model=None, tokenizer=None) -> list[str]:
    """Greedy replies of a local model (loaded from ``cfg.local`` unless given) to each conversation."""
    from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
    from wsteer.models import load_model, load_tokenizer

    tokenizer = tokenizer or load_tokenizer(cfg.local)
    model = model or load_model(cfg.local)
    backend = HFBackend(model, tokenizer)
    requests = [GenerationRequest(messages) for messages in conversations]
    sampling = SamplingConfig(max_new_tokens=cfg.max_tokens, temperature=0.0)
    return [g.text for g in backend.generate(requests, sampling, progress="second opinion")]


def add_second_opinions(reports: Sequence[LintReport], cfg: SecondOpinionConfig, model=None,
                        tokenizer=None) -> None:
    """Ask the configured model about each report's pair; record the answer and add a finding on fail/unclear."""
    conversations = [mirror_test_messages(r.pos, r.neg) for r in reports]
    if cfg.backend == "hf":
        replies = ask_local(conversations, cfg, model, tokenizer)
        source = f"hf:{cfg.local.name}"
    else:
        replies = [ask_openai(messages, cfg) for messages in conversations]
        source = f"openai:{cfg.model or '(default)'}@{cfg.base_url}"
    for report, reply in zip(reports, replies):
        opinion = parse_verdict(reply)
        report.second_opinion = {"source": source, **opinion, "raw": reply[:1000]}
        if opinion["verdict"] == "fail":
            unmirrored = f" (unmirrored: {', '.join(opinion['unmirrored'])})" if opinion["unmirrored"] else ""
            report.findings.append(Finding(
                RULE, cfg.severity, f"the second opinion ({source}) says the pair fails the mirror test: "
                f"{opinion['reason']}{unmirrored}", "read its reason; mirror or drop the content it names",
                None, opinion["unmirrored"]))
        elif opinion["verdict"] == "unclear":
            report.findings.append(Finding(
                RULE, "warning", f"the second opinion ({source}) gave no readable verdict",
                "use a stronger instruction-following model for the second opinion"))
