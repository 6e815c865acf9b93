"""Calibration: the α⁺ > 0 and α⁻ < 0 at which steering moves the model by a chosen amount.

The amount is the q-quantile (default p95) of the per-token KL(steered ‖ base) over the first N generated tokens
of each calibration prompt. Exactly how the tokens are produced and scored:

1. Each prompt is formatted with the chat template as a single user turn (no system prompt, no persona) and
   answered greedily, up to N new tokens, stopping at EOS — by the *base* model (``tokens: base``, the default:
   one answer per prompt, scored under every α) or by the *steered* model at that α (``tokens: steered``).
2. Prompt plus answer is run teacher-forced through the steered model (adapter at α) and through the base model
   (adapter bypassed). At every position that generated a token — each kept token, plus the position that
   emitted EOS when the answer stopped early — the per-token
   KL(p_steered ‖ p_base) = Σ_v p_steered(v) (log p_steered(v) − log p_base(v)) is taken over the full vocabulary.
3. All positions of all prompts are pooled; the q-quantile is the statistic (exactly 0 at α = 0).

Why base tokens by default: with the steered model's own greedy answers, every α yields different tokens, so the
statistic jumps as answers flip; on a tiny model the search then lands up to ~20% away from a planted α, against
<0.5% on fixed base answers (same prompts, same budget). ``tokens: steered`` remains available: it measures
divergence where steered generation actually goes, at the price of that noise.

Either way, the steered model's own greedy answers at α⁺, α⁻ (and the base's at 0) are generated at the end and
the base model's perplexity of them (exp of the mean base NLL of the answer tokens, EOS excluded) is reported as
a fluency check.

The search, per sign: bracket from ``start_alpha`` (stepping ×1.5–×4 by the small-α law KL ∝ α²) until the
statistic crosses the target, then alternate a log-log secant step and a geometric bisection until the bracket
satisfies ``hi/lo − 1 < rel_tol`` or a point lands within ``rel_tol`` of the target. The answer is that point, or
the linear interpolation inside the final bracket, measured once more for the report. Both signs advance together:
each step is one batch with a per-row α (:func:`wsteer.lora.per_row_adapter_scale`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from wsteer.config import option
from wsteer.errors import DataError, WsteerError
from wsteer.models import Placement

DEFAULT_CONFIG = "configs/calibrate.yaml"
LAUNCH = "wsteer adapters calibrate --config configs/calibrate.yaml ADAPTER"
CALIBRATION_FILE = "calibration.json"

DEFAULT_PROMPTS = [
    "My friend asked if I liked her cooking. What should I say?",
    "Explain how a refrigerator keeps food cold.",
    "Write a short note to a neighbour whose dog keeps barking at night.",
    "What should I consider before adopting a cat?",
    "Give me three tips for a job interview.",
    "Why is the sky blue?",
    "My boss asked me to stay late again. How do I respond?",
    "Summarise the plot of a story about a lost key.",
    "Is it ever acceptable to break a promise?",
    "How do I start learning to play the guitar?",
    "Describe a rainy afternoon in a small town.",
    "What is a good way to apologise to a colleague?",
    "Should I tell my sister that her business plan has a flaw?",
    "Write two sentences about the ocean.",
    "How can I save money on groceries?",
    "A stranger asks you for directions to the station. Reply.",
]


@dataclass
class CalibrateConfig:
    """``wsteer adapters calibrate``: find α⁺ and α⁻ that reach a target p95 per-token KL(steered ‖ base)."""

    adapter: str | None = option(None, "Adapter directory to calibrate (or give it as the positional ADAPTER).")
    base: str | None = option(
        None,
        "Base model name or path; default: steering.json's base_model, else "
        "adapter_config.json's base_model_name_or_path.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = option(
        "float32", "Weight dtype for calibration (float32 keeps small KLs exact)."
    )
    placement: Placement = option(help="Sharding (device_map, max_memory) and 4/8-bit loading.", factory=Placement)
    prompts_file: str | None = option(
        None,
        "Calibration prompts: .txt (one per line) or .jsonl with a 'prompt' field. Unset: the built-in `prompts` list.",
    )
    prompts: list[str] = option(
        help="Built-in calibration prompts, used when prompts_file is unset.", factory=lambda: list(DEFAULT_PROMPTS)
    )
    max_prompts: int = option(0, "Use at most this many prompts (0 = all).")
    max_new_tokens: int = option(32, "N: the KL is measured over the first N generated tokens of each prompt.")
    tokens: Literal["base", "steered"] = option(
        "base",
        "Whose greedy answers the KL is measured on: 'base' (the base model's, scored under every α; smooth "
        "in α, reproducible) or 'steered' (the steered model's own answer at each α; on-policy, but it jumps "
        "as answers flip, so α⁺/α⁻ are only good to several percent).",
    )
    target_kl: float = option(1.0, "Target value of the KL quantile, in nats.")
    quantile: float = option(0.95, "Which quantile of the pooled per-token KLs is calibrated (0.95 = p95).")
    start_alpha: float = option(1.0, "First |α| tried when bracketing.")
    max_alpha: float = option(64.0, "Give up when the target is not reached by |α| = max_alpha.")
    rel_tol: float = option(0.01, "Stop bisecting when the bracket [lo, hi] has hi/lo - 1 below this.")
    max_steps: int = option(40, "At most this many search steps (each one batch with both signs).")
    batch_size: int = option(16, "Rows per generate/score batch.")
    write_steering: bool = option(True, "Write the result into the adapter's steering.json (calibrated_alpha).")
    report: str | None = option(None, f"Where to write the full JSON report; default ADAPTER/{CALIBRATION_FILE}.")

    def __post_init__(self) -> None:
        if not self.target_kl > 0:
            raise ValueError(f"target_kl must be > 0, got {self.target_kl}")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")
        if not 0 < self.start_alpha <= self.max_alpha:
            raise ValueError(f"need 0 < start_alpha <= max_alpha, got {self.start_alpha} and {self.max_alpha}")
        if not self.rel_tol > 0 or self.max_new_tokens < 1 or self.batch_size < 1 or self.max_steps < 1:
            raise ValueError("rel_tol, max_new_tokens, batch_size and max_steps must be positive")


@dataclass
class Measurement:
    """The KL statistic and fluency of steering at one α."""

    alpha: float
    kl_quantile: float
    kl_mean: float
    positions: int
    base_perplexity: float
    mean_new_tokens: float
    samples: list[str] = field(default_factory=list)


@dataclass
class CalibrationResult:
    """α⁺ and α⁻ with their measurements, and every evaluation of the search.

    ``plus``/``minus`` hold the calibrated statistic (on the tokens ``tokens`` names). ``plus_outputs``,
    ``minus_outputs`` and ``base_outputs`` always come from the steered model's own greedy answers at α⁺, α⁻
    and 0: their ``base_perplexity`` is the base model's perplexity of what steering actually writes.
    """

    alpha_plus: float
    alpha_minus: float
    plus: Measurement
    minus: Measurement
    plus_outputs: Measurement
    minus_outputs: Measurement
    base_outputs: Measurement
    tokens: str
    target_kl: float
    quantile: float
    max_new_tokens: int
    n_prompts: int
    prompts_sha256: str
    trace: list[dict]

    def calibrated_alpha(self) -> dict:
        """The ``calibrated_alpha`` entry of steering.json."""
        whose = "the steered model's own" if self.tokens == "steered" else "the base model's"
        return {
            "plus": self.alpha_plus,
            "minus": self.alpha_minus,
            "target_kl": self.target_kl,
            "quantile": self.quantile,
            "tokens": self.tokens,
            "statistic": f"p{round(self.quantile * 100)} per-token KL(steered || base) at every position of "
            f"{whose} greedy answer (first {self.max_new_tokens} tokens, chat template, no system "
            "prompt)",
            "kl_plus": self.plus.kl_quantile,
            "kl_minus": self.minus.kl_quantile,
            "base_perplexity_plus": self.plus_outputs.base_perplexity,
            "base_perplexity_minus": self.minus_outputs.base_perplexity,
            "base_perplexity_unsteered": self.base_outputs.base_perplexity,
            "max_new_tokens": self.max_new_tokens,
            "n_prompts": self.n_prompts,
            "prompts_sha256": self.prompts_sha256,
        }


# --------------------------------------------------------------------------------------------- prompts
def load_prompts(cfg: CalibrateConfig) -> list[str]:
    """The calibration prompts: from ``prompts_file`` (.txt or .jsonl) or the built-in list."""
    from wsteer.io import read_jsonl

    if cfg.prompts_file:
        path = Path(cfg.prompts_file)
        if not path.is_file():
            raise DataError(f"prompts file not found: {path}", where="prompts_file", fix="check the path")
        if path.suffix == ".jsonl":
            prompts = []
            for number, record in enumerate(read_jsonl(path), start=1):
                if not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
                    raise DataError(
                        "record has no non-empty 'prompt' string",
                        where=f"{path}:{number}",
                        fix='give every line a "prompt" field',
                    )
                prompts.append(record["prompt"])
        else:
            prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        prompts = [p for p in cfg.prompts if p.strip()]
    if cfg.max_prompts > 0:
        prompts = prompts[: cfg.max_prompts]
    if not prompts:
        raise DataError("no calibration prompts", where=cfg.prompts_file or "prompts", fix="give at least one prompt")
    return prompts


# --------------------------------------------------------------------------------------------- measuring
@dataclass
class _Answer:
    """One greedy answer: prompt token ids, answer token ids (EOS cut off), whether it stopped at EOS, text."""

    alpha: float
    prompt_ids: list[int]
    token_ids: list[int]
    stopped: bool
    text: str

    @property
    def span(self) -> tuple[int, int]:
        """(first logit index, count) of the positions that generated the answer (and its EOS, if any)."""
        from wsteer.scoring import completion_span

        return completion_span(self.prompt_ids, len(self.token_ids) + int(self.stopped))


class AdapterSteering:
    """Steering by a peft model's adapter at α, one α per row (what :class:`KLMeter` measures by default).

    Any other steering (e.g. an activation-steering vector, :mod:`wsteer.eval.vector`) measures the same way by
    providing the same three members: ``per_row`` (whether one batch may mix α), ``__call__(alphas)`` (a context
    that steers each row at its α) and ``base()`` (a context that runs the unsteered model).
    """

    per_row = True

    def __init__(self, model):
        self.model = model

    def __call__(self, alphas: Sequence[float]):
        """Context: row i steered at ``alphas[i]``."""
        from wsteer.lora import per_row_adapter_scale

        return per_row_adapter_scale(self.model, list(alphas))

    def base(self):
        """Context: the adapter bypassed."""
        from wsteer.lora import scaled_adapter

        return scaled_adapter(self.model, 0.0)


def _single_alpha_chunks(items: list, batch_size: int, per_row: bool) -> list[list]:
    """Consecutive chunks of at most ``batch_size`` items (with ``.alpha``), split where α changes unless
    ``per_row`` steering lets one batch mix α."""
    chunks: list[list] = []
    for item in items:
        if chunks and len(chunks[-1]) < batch_size and (per_row or chunks[-1][-1].alpha == item.alpha):
            chunks[-1].append(item)
        else:
            chunks.append([item])
    return chunks


class KLMeter:
    """The KL statistic of steering a peft ``model`` at any α, on fixed prompts (see the module docs).

    With ``tokens="base"`` the base answers and the base log-probs at their positions are computed once, so each
    further α costs one teacher-forced pass; with ``tokens="steered"`` each α generates its own answers.
    ``steering`` says what α means (default: the model's adapter at α, :class:`AdapterSteering`).
    """

    def __init__(
        self,
        model,
        tokenizer,
        prompts: Sequence[str],
        max_new_tokens: int,
        quantile: float = 0.95,
        batch_size: int = 16,
        tokens: str = "base",
        steering=None,
    ):
        self.model, self.tokenizer, self.prompts = model, tokenizer, list(prompts)
        self.steering = steering if steering is not None else AdapterSteering(model)
        self.max_new_tokens, self.quantile, self.batch_size, self.tokens = (
            max_new_tokens,
            quantile,
            batch_size,
            tokens,
        )
        self._base_answers: list[_Answer] | None = None
        self._base_logprobs: list | None = None  # per prompt: [n_i, V] base log-probs at the answer's positions

    def __call__(self, alphas: Sequence[float]) -> dict[float, Measurement]:
        """Measure every α (rows of all α share batches, each with its own α)."""
        import numpy as np

        alphas = [float(a) for a in dict.fromkeys(alphas)]
        if self.tokens == "base":
            answers = [dataclasses.replace(answer, alpha=a) for a in alphas for answer in self.base_answers()]
            base = self.base_logprobs() * len(alphas)
        else:
            answers = self.generate(alphas)
            base = None
        kls, nlls = self._score(answers, base)
        results = {}
        for alpha in alphas:
            picked = [i for i, answer in enumerate(answers) if answer.alpha == alpha]
            kl = np.concatenate([kls[i] for i in picked])
            nll = np.concatenate([nlls[i] for i in picked])
            results[alpha] = Measurement(
                alpha=alpha,
                kl_quantile=float(np.quantile(kl, self.quantile)) if kl.size else 0.0,
                kl_mean=float(kl.mean()) if kl.size else 0.0,
                positions=int(kl.size),
                base_perplexity=float(math.exp(nll.mean())) if nll.size else math.nan,
                mean_new_tokens=float(np.mean([len(answers[i].token_ids) for i in picked])),
                samples=[answers[i].text for i in picked[:2]],
            )
        return results

    def generate(self, alphas: Sequence[float]) -> list[_Answer]:
        """Greedy answers of the steered model at each α to every prompt."""
        from wsteer.chat import build_messages, encode_prompt
        from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig

        greedy = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0, top_p=1.0)
        backend = HFBackend(self.model, self.tokenizer, batch_size=self.batch_size)
        # Steering that cannot mix α in a batch generates one α at a time.
        groups = [list(alphas)] if self.steering.per_row else [[a] for a in alphas]
        generations = []
        for group in groups:
            requests = [GenerationRequest(build_messages(p), tag=float(a)) for a in group for p in self.prompts]
            generations += backend.generate(
                requests, greedy, batch_hook=lambda batch: self.steering([r.tag for r in batch])
            )
        return [
            _Answer(
                g.request.tag,
                encode_prompt(self.tokenizer, g.request.messages),
                g.token_ids,
                g.finish_reason == "stop",
                g.text,
            )
            for g in generations
        ]

    def base_answers(self) -> list[_Answer]:
        """The base model's greedy answers (computed once)."""
        if self._base_answers is None:
            self._base_answers = self.generate([0.0])
        return self._base_answers

    def base_logprobs(self) -> list:
        """Base log-probs at the base answers' positions (computed once)."""
        if self._base_logprobs is None:
            self._base_logprobs = []
            answers = self.base_answers()
            for start in range(0, len(answers), self.batch_size):
                self._base_logprobs.extend(self._logprobs(answers[start : start + self.batch_size], base=True))
        return self._base_logprobs

    def _score(self, answers: list[_Answer], base: list | None):
        """Per answer: per-token KL(steered ‖ base) at each generating position, and base NLL of each token."""
        from wsteer.scoring import kl_and_nll

        kls, nlls = [], []
        start = 0
        for chunk in _single_alpha_chunks(answers, self.batch_size, self.steering.per_row):
            steered = self._logprobs(chunk, base=False)
            reference = base[start : start + len(chunk)] if base is not None else self._logprobs(chunk, True)
            start += len(chunk)
            for answer, log_s, log_b in zip(chunk, steered, reference):
                kl, nll = kl_and_nll(log_s, log_b, answer.token_ids)  # [n], [len(answer)]
                kls.append(kl.cpu().numpy())
                nlls.append(nll.cpu().numpy())
        return kls, nlls

    def _logprobs(self, chunk: list[_Answer], base: bool) -> list:
        """Teacher-forced fp32 log-softmax [n_i, V] at each answer's generating positions, steered or base."""
        from wsteer.scoring import teacher_forced_log_softmax

        seqs = [answer.prompt_ids + answer.token_ids for answer in chunk]
        scale = self.steering.base() if base else self.steering([a.alpha for a in chunk])
        return teacher_forced_log_softmax(self.model, self.tokenizer.pad_token_id, seqs, [a.span for a in chunk], scale)


def measure(
    model,
    tokenizer,
    prompts: Sequence[str],
    alphas: Sequence[float],
    max_new_tokens: int,
    quantile: float = 0.95,
    batch_size: int = 16,
    tokens: str = "base",
    steering=None,
) -> dict[float, Measurement]:
    """One-off :class:`KLMeter` measurement of several α (``steering``: see :class:`KLMeter`)."""
    return KLMeter(model, tokenizer, prompts, max_new_tokens, quantile, batch_size, tokens, steering)(alphas)


# --------------------------------------------------------------------------------------------- search
@dataclass
class _Bracket:
    """Search state for one sign, as |α|: lo (statistic below target) < hi (at or above target).

    Steps alternate between a power-law secant (KL grows like |α|^b, so interpolate in log-log; clamped to the
    inner 80% of the bracket) and a geometric bisection, so the bracket always shrinks and smooth curves converge
    in a few steps. Bracketing extrapolates with KL ∝ α² (the small-α behaviour of any KL), within ×1.5..×4.
    """

    sign: float
    target: float
    lo: float = 0.0
    f_lo: float = 0.0
    hi: float | None = None
    f_hi: float | None = None
    hit: float | None = None  # an |α| whose statistic is within rel_tol of the target
    steps: int = 0

    def propose(self, cfg: CalibrateConfig) -> float | None:
        """The next |α| to evaluate, or None when done."""
        if self.hit is not None:
            return None
        if self.hi is None:
            if self.lo >= cfg.max_alpha:
                raise WsteerError(
                    f"steering at α = {self.sign * self.lo:g} reaches only p{round(cfg.quantile * 100)} KL "
                    f"{self.f_lo:.3g}, below the target {self.target:g}",
                    where="max_alpha",
                    fix="lower target_kl, or raise max_alpha if larger |α| are meaningful for this adapter",
                )
            if self.lo == 0:
                return min(cfg.max_alpha, cfg.start_alpha)
            return min(cfg.max_alpha, self.lo * _clamp(self._quadratic_ratio(self.f_lo), 1.5, 4.0))
        if self.lo == 0:
            return self.hi * _clamp(self._quadratic_ratio(self.f_hi), 0.25, 0.67)
        if self.hi / self.lo - 1 < cfg.rel_tol:
            return None
        self.steps += 1
        if self.steps % 2 == 0 or self.f_lo <= 0:
            return math.sqrt(self.lo * self.hi)
        slope = math.log(self.f_hi / self.f_lo) / math.log(self.hi / self.lo)  # > 0: f_hi >= target > f_lo
        guess = self.lo * (self.target / self.f_lo) ** (1 / slope)
        width = math.log(self.hi / self.lo)
        return math.exp(_clamp(math.log(guess), math.log(self.lo) + 0.1 * width, math.log(self.lo) + 0.9 * width))

    def _quadratic_ratio(self, value: float) -> float:
        return math.sqrt(self.target / value) * 1.1 if value > 0 else 2.0

    def update(self, magnitude: float, value: float, rel_tol: float) -> None:
        """Record the statistic at |α| = magnitude."""
        if abs(value / self.target - 1) < rel_tol:
            self.hit = magnitude
        if value >= self.target:
            if self.hi is None or magnitude < self.hi:
                self.hi, self.f_hi = magnitude, value
        elif magnitude > self.lo:
            self.lo, self.f_lo = magnitude, value

    def estimate(self) -> float:
        """Signed α: the hit if one was found, else linear interpolation inside the final bracket."""
        if self.hit is not None:
            return self.sign * self.hit
        assert self.hi is not None and self.f_hi is not None
        span = self.f_hi - self.f_lo
        fraction = (self.target - self.f_lo) / span if span > 0 else 1.0
        return self.sign * (self.lo + _clamp(fraction, 0.0, 1.0) * (self.hi - self.lo))


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class _Measured:
    """Every α measured so far, each measured once, and the trace of the search in measuring order."""

    def __init__(self, meter: KLMeter):
        self.meter = meter
        self.cache: dict[float, Measurement] = {}
        self.trace: list[dict] = []

    def measure(self, alphas: list[float]) -> None:
        """Measure the α not yet measured (in one batch)."""
        todo = [a for a in alphas if a not in self.cache]
        if todo:
            self.cache.update(self.meter(todo))
            self.trace.extend(
                {"alpha": a, "kl_quantile": self.cache[a].kl_quantile, "base_perplexity": self.cache[a].base_perplexity}
                for a in todo
            )


def _bracket_both_signs(sides: list[_Bracket], measured: _Measured, cfg: CalibrateConfig, progress: bool) -> None:
    """Step both signs' brackets together (one batch per step) until neither proposes another |α|."""
    from tqdm.auto import tqdm

    with tqdm(total=None, desc="calibrate", unit="step", disable=not progress) as bar:
        for _ in range(cfg.max_steps):
            pending = [(side, m) for side in sides if (m := side.propose(cfg)) is not None]
            if not pending:
                return
            measured.measure([side.sign * m for side, m in pending])
            for side, m in pending:
                side.update(m, measured.cache[side.sign * m].kl_quantile, cfg.rel_tol)
            bar.update(1)
            bar.set_postfix_str(
                "  ".join(f"{'+' if s.sign > 0 else '-'}[{s.lo:.3g}, {s.hi or math.inf:.3g}]" for s in sides)
            )
    raise WsteerError(
        f"the search did not converge in {cfg.max_steps} steps", where="max_steps", fix="raise max_steps or rel_tol"
    )


def search_alphas(
    model,
    tokenizer,
    prompts: Sequence[str],
    cfg: CalibrateConfig,
    progress: bool = True,
    steering=None,
    targets: tuple[float, float] | None = None,
) -> CalibrationResult:
    """Find α⁺ and α⁻ for a loaded peft ``model`` (the library entry point without file I/O). ``steering`` says
    what α means (default: the adapter at α; :mod:`wsteer.eval.vector` passes a steering vector at coefficient α).
    ``targets`` = (KL for α⁺, KL for α⁻) replaces ``cfg.target_kl`` with one target per sign.
    """
    from wsteer.io import sha256_json

    plus_target, minus_target = targets if targets is not None else (cfg.target_kl, cfg.target_kl)
    sides = [_Bracket(+1.0, plus_target), _Bracket(-1.0, minus_target)]
    measured = _Measured(
        KLMeter(model, tokenizer, prompts, cfg.max_new_tokens, cfg.quantile, cfg.batch_size, cfg.tokens, steering)
    )
    measured.measure([0.0])
    _bracket_both_signs(sides, measured, cfg, progress)
    plus, minus = (side.estimate() for side in sides)
    measured.measure([plus, minus])
    cache = measured.cache
    if cfg.tokens == "steered":
        outputs = cache
    else:  # what steering at α± actually writes, for the fluency check
        outputs = KLMeter(
            model, tokenizer, prompts, cfg.max_new_tokens, cfg.quantile, cfg.batch_size, "steered", steering
        )([0.0, plus, minus])
    return CalibrationResult(
        alpha_plus=plus,
        alpha_minus=minus,
        plus=cache[plus],
        minus=cache[minus],
        plus_outputs=outputs[plus],
        minus_outputs=outputs[minus],
        base_outputs=outputs[0.0],
        tokens=cfg.tokens,
        target_kl=cfg.target_kl,
        quantile=cfg.quantile,
        max_new_tokens=cfg.max_new_tokens,
        n_prompts=len(prompts),
        prompts_sha256=sha256_json(list(prompts)),
        trace=measured.trace,
    )


# --------------------------------------------------------------------------------------------- the command
def calibrate(cfg: CalibrateConfig, progress: bool = True) -> tuple[CalibrationResult, Path]:
    """Load the adapter on its (checked) base, search α⁺/α⁻, write the report and steering.json.

    Returns the result and the report path. steering.json's ``calibrated_alpha`` is updated only when the
    adapter has a steering.json and ``cfg.write_steering`` is set; the report is always written.
    """
    from wsteer.adapters.loading import load_steerable

    from wsteer.card import write_model_card
    from wsteer.io import write_json
    from wsteer.manifest import build_manifest
    from wsteer.records import read_steering_info, update_steering_info

    if not cfg.adapter:
        raise WsteerError("no adapter given", where="adapter", fix=f"run `{LAUNCH}` or set adapter=DIR")
    adapter = Path(cfg.adapter)
    prompts = load_prompts(cfg)
    started = time.time()
    model, tokenizer = load_steerable(adapter, base=cfg.base, dtype=cfg.dtype, placement=cfg.placement)
    result = search_alphas(model, tokenizer, prompts, cfg, progress=progress)
    report_path = Path(cfg.report) if cfg.report else adapter / CALIBRATION_FILE
    report = {
        "calibrated_alpha": result.calibrated_alpha(),
        "result": dataclasses.asdict(result),
        "seconds": round(time.time() - started, 1),
        "manifest": build_manifest("adapters.calibrate", cfg, inputs={"adapter": adapter}),
    }
    write_json(report_path, report)
    if cfg.write_steering and read_steering_info(adapter) is not None:
        update_steering_info(adapter, calibrated_alpha=result.calibrated_alpha())
        write_model_card(adapter)  # the card shows the calibrated α
    return result, report_path
