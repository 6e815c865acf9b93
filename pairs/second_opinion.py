"""A second opinion on the mirror test from a language model (off by default).

The seed's advice: "don't grade your own pair from memory … hand them to a second model with just this test". This
module asks either an OpenAI-compatible chat-completions endpoint (standard-library ``urllib``, no SDK) or a local
Hugging Face model (through the shared loader) whether a pair is mirrored, and turns a "fail" into a lint finding.

The client is the core's (:mod:`wsteer.llm`): the API key is read from the environment variable *named* by
``api_key_env`` and never written anywhere, and any echo of it in a response is redacted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal, Sequence

from wsteer.pairs.lint import Finding, LintReport

from wsteer.chat import Messages
from wsteer.config import option
from wsteer.llm import LLMConfig, ask

RULE = "second-opinion"

SYSTEM_PROMPT = (
    "You review persona pairs used to steer language models. The steering direction is the average difference "
    "between text written as the POS persona and text written as the NEG persona, so anything that differs "
    "between the two descriptions other than the intended pole becomes part of the direction."
)

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
class SecondOpinionConfig(LLMConfig):
    """Where to ask for a second opinion (see :class:`wsteer.llm.LLMConfig`) and how to treat it."""

    severity: Literal["warning", "error"] = option(
        "warning", "Severity of the finding when the second opinion says the pair fails the mirror test."
    )


def mirror_test_messages(pos: str, neg: str) -> Messages:
    """The conversation that asks a model for the mirror test of one pair."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": MIRROR_TEST.format(pos=pos.strip(), neg=neg.strip())},
    ]


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
            return {
                "verdict": verdict,
                "unmirrored": [str(u) for u in unmirrored][:10] if isinstance(unmirrored, list) else [str(unmirrored)],
                "reason": str(data.get("reason", ""))[:500],
            }
    words = set(re.findall(r"\b(pass|fail)\b", text.lower()))
    if len(words) == 1:
        return {"verdict": words.pop(), "unmirrored": [], "reason": text.strip()[:500]}
    return {"verdict": "unclear", "unmirrored": [], "reason": text.strip()[:500]}


def add_second_opinions(reports: Sequence[LintReport], cfg: SecondOpinionConfig, model=None, tokenizer=None) -> None:
    """Ask the configured model about each report's pair; record the answer and add a finding on fail/unclear."""
    conversations = [mirror_test_messages(r.pos, r.neg) for r in reports]
    replies = ask(conversations, cfg, model, tokenizer, purpose="second-opinion")
    source = cfg.describe()
    for report, reply in zip(reports, replies):
        opinion = parse_verdict(reply)
        report.second_opinion = {"source": source, **opinion, "raw": reply[:1000]}
        if opinion["verdict"] == "fail":
            unmirrored = f" (unmirrored: {', '.join(opinion['unmirrored'])})" if opinion["unmirrored"] else ""
            report.findings.append(
                Finding(
                    RULE,
                    cfg.severity,
                    f"the second opinion ({source}) says the pair fails the mirror test: "
                    f"{opinion['reason']}{unmirrored}",
                    "read its reason; mirror or drop the content it names",
                    None,
                    opinion["unmirrored"],
                )
            )
        elif opinion["verdict"] == "unclear":
            report.findings.append(
                Finding(
                    RULE,
                    "warning",
                    f"the second opinion ({source}) gave no readable verdict",
                    "use a stronger instruction-following model for the second opinion",
                )
            )
