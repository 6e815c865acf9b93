"""Optional pairwise LLM judge for A/B runs, with position swapping and off-axis checks.

Each (prompt, answer A, answer B) is shown to the judge twice, once in each order. A verdict counts only when
both orders agree; otherwise the pair is a tie and is counted as position-inconsistent. Besides the trait
question (which answer is more POS than NEG?), the rubric asks the off-axis questions the seed warns about —
which is longer, which refuses, which hedges, which is more formal, is either incoherent — so a judge-detected
"trait" win can be read next to what else differed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wsteer.chat import Messages
from wsteer.config import option
from wsteer.llm import LLMConfig, ask

QUESTIONS = ("trait", "longer", "refuses", "hedges", "more_formal", "incoherent")

JUDGE_SYSTEM = (
    "You compare two responses to the same prompt. Judge only what is asked, answer every question "
    "independently, and reply with JSON only."
)

JUDGE_PROMPT = """PROMPT:
{prompt}

RESPONSE 1:
{one}

RESPONSE 2:
{two}

The trait runs from POS ("{pos}") to NEG ("{neg}").
Answer each question with "1", "2" or "tie":
- trait: which response shows more of POS rather than NEG? (ignore length and style here)
- longer: which response is longer?
- refuses: which response refuses or declines more?
- hedges: which response hedges more (maybe, might, it depends)?
- more_formal: which response is more formal in register?
- incoherent: which response is less coherent or fluent?

Reply with JSON only, e.g.
{{"trait": "1", "longer": "tie", "refuses": "tie", "hedges": "2", "more_formal": "tie", "incoherent": "tie",
"reason": "one sentence about the trait"}}"""


@dataclass
class JudgeConfig(LLMConfig):
    """The pairwise judge (off by default); where to ask is :class:`wsteer.llm.LLMConfig`."""

    enabled: bool = option(False, "Ask an LLM judge to compare the two arms' answers (both orders).")
    max_pairs: int = option(24, "Judge at most this many answer pairs (each costs two calls).")


def judge_messages(prompt: str, one: str, two: str, pos: str, neg: str) -> Messages:
    """The conversation asking the judge about one ordering of two answers."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_PROMPT.format(prompt=prompt, one=one, two=two, pos=pos, neg=neg)},
    ]


def parse_judgement(text: str) -> dict[str, str]:
    """``{question: "1"|"2"|"tie"}`` from a reply (unreadable answers become "tie"), plus ``reason``."""
    for match in re.finditer(r"\{.*?\}", text, flags=re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "trait" in data:
            out = {q: str(data.get(q, "tie")).strip().lower() for q in QUESTIONS}
            out = {q: v if v in ("1", "2") else "tie" for q, v in out.items()}
            out["reason"] = str(data.get("reason", ""))[:300]
            return out
    return {**{q: "tie" for q in QUESTIONS}, "reason": "unreadable reply", "unreadable": "true"}


def combine_orders(first: dict[str, str], swapped: dict[str, str]) -> dict[str, str]:
    """Per question: "A", "B" or "tie", keeping a winner only when both orders name the same answer.

    In ``first`` response 1 is A; in ``swapped`` response 1 is B.
    """
    to_arm_first = {"1": "A", "2": "B", "tie": "tie"}
    to_arm_swapped = {"1": "B", "2": "A", "tie": "tie"}
    out = {}
    for question in QUESTIONS:
        a, b = to_arm_first[first[question]], to_arm_swapped[swapped[question]]
        out[question] = a if a == b else "tie"
        out[f"{question}_consistent"] = a == b
    return out


def judge_pairs(
    prompts: Sequence[str],
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    pos: str,
    neg: str,
    cfg: JudgeConfig,
    model=None,
    tokenizer=None,
) -> list[dict]:
    """Position-swapped verdicts for each (prompt, A, B): ``{question: "A"|"B"|"tie", …, "reason"}``."""
    n = len(prompts)
    conversations = [judge_messages(p, a, b, pos, neg) for p, a, b in zip(prompts, answers_a, answers_b)]
    conversations += [judge_messages(p, b, a, pos, neg) for p, a, b in zip(prompts, answers_a, answers_b)]
    replies = ask(conversations, cfg, model, tokenizer, purpose="judge")
    verdicts = []
    for first, swapped in zip(replies[:n], replies[n:]):
        one, two = parse_judgement(first), parse_judgement(swapped)
        verdicts.append(
            {
                **combine_orders(one, two),
                "reason": one["reason"],
                "unreadable": bool(one.get("unreadable") or two.get("unreadable")),
            }
        )
    return verdicts


def summarize_verdicts(verdicts: Sequence[dict]) -> dict:
    """Per question: A wins, B wins, ties, position-inconsistent count, and a two-sided sign test on A vs B."""
    from scipy.stats import binomtest

    out = {}
    for question in QUESTIONS:
        wins_a = sum(v[question] == "A" for v in verdicts)
        wins_b = sum(v[question] == "B" for v in verdicts)
        decided = wins_a + wins_b
        out[question] = {
            "A": wins_a,
            "B": wins_b,
            "tie": len(verdicts) - decided,
            "inconsistent": sum(not v[f"{question}_consistent"] for v in verdicts),
            "sign_p": float(binomtest(wins_a, decided, 0.5).pvalue) if decided else 1.0,
        }
    out["unreadable"] = sum(v["unreadable"] for v in verdicts)
    return out
