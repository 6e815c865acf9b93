"""The activation-steering arm: a mean-difference steering vector from the same cho/rej pairs as the adapter.

The vector is built with the ``steering-vectors`` package (:func:`steering_vectors.train_steering_vector` with its
mean aggregator): for each pair, the base model (adapter off) reads ``chat prompt + cho`` and ``chat prompt + rej``,
the residual stream after one decoder block is taken at the last token, and the vector is
mean(cho activations) − mean(rej activations) — the persona-vector / representation-engineering recipe. It is
applied with :meth:`steering_vectors.SteeringVector.apply` at a multiplier c, added at every position; c > 0
pushes toward cho (the pos persona), c < 0 toward rej.

Which layer (``vector.layer_rule``):

* ``middle`` (default): block ``n_layers // 2``. Mean-difference vectors of persona/behaviour traits work best
  in the middle of the network (early layers hold surface features, late ones the next token); it costs nothing
  and is what the hand-built reviewer vector used (layer 15 of 30).
* ``separation``: the block whose vector best separates *held-out* pairs (``heldout_pairs``): for each block,
  the share of held-out pairs whose activation difference (cho − rej) projects positively on that block's
  vector (ties: the larger mean projection in units of its spread). Data-driven, but it needs held-out pairs and
  one more activation pass.

Coefficients are calibrated to the same KL budget as the adapter by :func:`wsteer.adapters.calibrate.search_alphas`
with :class:`VectorSteering` in place of the adapter: the same prompts, tokens and p95 per-token KL statistic.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Literal, Sequence

from wsteer.config import option
from wsteer.errors import DataError, WsteerError


@dataclass
class VectorArms:
    """Activation-steering arms of ``wsteer eval sweep`` (off unless ``pairs`` is set)."""

    pairs: str | None = option(
        None,
        "Curated pairs JSONL the vector is built from (the adapter's training pairs or held-out pairs); null = no "
        "vector arms.",
    )
    limit: int = option(64, "Build the vector from at most this many pairs.")
    layer: int | None = option(None, "Decoder block whose output is steered (0-based); null = layer_rule.")
    layer_rule: Literal["middle", "separation"] = option(
        "middle",
        "How the block is chosen when layer is null: 'middle' (n_layers // 2) or 'separation' (the block whose "
        "vector best separates the held-out pairs, heldout_pairs).",
    )
    calibrate: bool = option(
        True,
        "Calibrate ±c (vector) and ±α (adapter) to the same p95 KL target and add those arms (with match_alpha: "
        "±c to the adapter's KL at the swept ±match_alpha, no arm added).",
    )
    target_kl: float = option(0.5, "KL budget (p95 per-token KL to the base, nats) for the equal-KL arms.")
    match_alpha: float | None = option(
        None,
        "Instead of target_kl: calibrate +c to the KL the adapter reaches at α = +match_alpha and −c to its KL at "
        "α = −match_alpha (both must be swept α), so the vector sits beside adapter arms the sweep already has.",
    )
    calibration_prompts: int = option(8, "Calibration prompts (the first N of calibrate's built-in list).")
    calibration_tokens: int = option(16, "Base-answer tokens per calibration prompt the KL is measured on.")
    rel_tol: float = option(0.05, "Calibration stops when the KL is within this relative distance of the target.")
    max_coefficient: float = option(64.0, "Give up calibrating when |c| or |α| reaches this.")
    coefficients: list[float] = option(help="Extra fixed vector coefficients to sweep.", factory=list)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.calibration_prompts < 1 or self.calibration_tokens < 1:
            raise ValueError("vector.limit, calibration_prompts and calibration_tokens must be >= 1")
        if not self.target_kl > 0:
            raise ValueError(f"vector.target_kl must be > 0, got {self.target_kl}")
        if self.match_alpha is not None and not self.match_alpha > 0:
            raise ValueError(f"vector.match_alpha must be > 0 (or null), got {self.match_alpha}")


class VectorSteering:
    """A steering vector applied to ``model`` with the adapter off: the steering :class:`KLMeter` measures.

    ``steering(coefficients)`` is a context for one batch at one coefficient (a forward hook adds the same vector
    to every row, so a batch cannot mix coefficients: ``per_row`` is False). Coefficient 0 adds no hook.
    """

    per_row = False

    def __init__(self, model, vector, layer: int):
        self.model, self.vector, self.layer = model, vector, layer

    def __call__(self, coefficients: Sequence[float]):
        """Context: every row steered at the one coefficient in ``coefficients``."""
        distinct = set(float(c) for c in coefficients)
        if len(distinct) != 1:
            raise ValueError(f"a steering-vector batch needs one coefficient, got {sorted(distinct)}")
        return self.at(distinct.pop())

    @contextlib.contextmanager
    def at(self, coefficient: float):
        """Context: the base model (adapter off) with the vector added at ``coefficient`` at every position."""
        from wsteer.eval.scoring import base_context

        with base_context(self.model):
            if coefficient == 0:
                yield
            else:
                with self.vector.apply(self.model, multiplier=float(coefficient), min_token_index=0):
                    yield

    def base(self):
        """Context: the unsteered base model."""
        from wsteer.eval.scoring import base_context

        return base_context(self.model)

    def digest(self) -> str:
        """sha256 of the layer and vector values (a cache key part)."""
        tensor = self.vector.layer_activations[self.layer].detach().float().cpu().contiguous()
        return hashlib.sha256(f"{self.layer}:".encode() + tensor.numpy().tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------- building
def num_layers(model) -> int:
    """Number of decoder blocks the steering-vectors layer matcher finds in ``model``."""
    from steering_vectors import get_num_matching_layers, guess_and_enhance_layer_config

    return get_num_matching_layers(model, guess_and_enhance_layer_config(model, None, "decoder_block")["decoder_block"])


def pair_texts(tokenizer, records: Sequence[dict]) -> list[tuple[str, str]]:
    """(chat prompt + cho, chat prompt + rej) per record: the strings whose last-token activations are read."""
    from wsteer.chat import build_messages, render_prompt

    texts = []
    for record in records:
        prompt = render_prompt(tokenizer, record.get("messages") or build_messages(record["prompt"]))
        texts.append((prompt + record["cho"], prompt + record["rej"]))
    return texts


def read_pairs(path: str, limit: int) -> list[dict]:
    """At most ``limit`` curated pairs from ``path`` (a clear error when missing or empty)."""
    from pathlib import Path

    from wsteer.io import read_jsonl
    from wsteer.records import PairRecord

    if not Path(path).is_file():
        raise DataError(f"pairs file not found: {path}", where="vector.pairs", fix="give a curated pairs JSONL")
    records = read_jsonl(path, PairRecord)[:limit]
    if not records:
        raise DataError(f"no pairs in {path}", where="vector.pairs", fix="give a file with at least one pair")
    return records


def train_vector(model, tokenizer, records: Sequence[dict], layers: list[int] | None, batch_size: int = 8):
    """Mean-difference :class:`steering_vectors.SteeringVector` of the base model (adapter off) at ``layers``."""
    from steering_vectors import train_steering_vector
    from wsteer.eval.scoring import base_context

    with base_context(model):
        return train_steering_vector(
            model, tokenizer, pair_texts(tokenizer, records), layers=layers, read_token_index=-1, batch_size=batch_size
        )


def separation_by_layer(model, tokenizer, vector, heldout: Sequence[dict], batch_size: int = 8) -> dict[int, dict]:
    """Per layer of ``vector``: ``{"accuracy", "d"}`` — share of held-out pairs whose activation difference
    (cho − rej) projects positively on the layer's vector, and the mean projection over its standard deviation."""
    import torch
    from steering_vectors import extract_activations
    from wsteer.eval.scoring import base_context

    with base_context(model):
        pos, neg = extract_activations(
            model,
            tokenizer,
            pair_texts(tokenizer, heldout),
            layers=list(vector.layer_activations),
            batch_size=batch_size,
        )
    out = {}
    for layer, direction in vector.layer_activations.items():
        diff = torch.cat(pos[layer]) - torch.cat(neg[layer])  # [n_pairs, d_model]
        projection = diff.float() @ (direction.float() / direction.float().norm().clamp_min(1e-12))  # [n_pairs]
        spread = float(projection.std()) if projection.numel() > 1 else 0.0
        out[layer] = {
            "accuracy": float((projection > 0).float().mean()),
            "d": float(projection.mean()) / spread if spread > 0 else 0.0,
        }
    return out


def build_vector_steering(model, tokenizer, cfg: VectorArms, heldout_pairs: str | None, batch_size: int = 8):
    """The :class:`VectorSteering` of ``cfg`` and how its layer was chosen (``{"layer", "rule", ...}``)."""
    records = read_pairs(cfg.pairs, cfg.limit)
    n = num_layers(model)
    if cfg.layer is not None:
        if not 0 <= cfg.layer < n:
            raise WsteerError(
                f"vector.layer {cfg.layer} is not a block of this model ({n} blocks)",
                where="vector.layer",
                fix=f"give a layer in 0..{n - 1}, or null for layer_rule",
            )
        vector = train_vector(model, tokenizer, records, [cfg.layer], batch_size)
        return VectorSteering(model, vector, cfg.layer), {"layer": cfg.layer, "rule": "given", "n_layers": n}
    if cfg.layer_rule == "middle":
        layer = n // 2
        vector = train_vector(model, tokenizer, records, [layer], batch_size)
        return VectorSteering(model, vector, layer), {"layer": layer, "rule": "middle", "n_layers": n}
    if not heldout_pairs:
        raise WsteerError(
            "vector.layer_rule=separation needs held-out pairs to measure separation",
            where="heldout_pairs",
            fix="set heldout_pairs=FILE, or vector.layer_rule=middle",
        )
    full = train_vector(model, tokenizer, records, None, batch_size)
    scores = separation_by_layer(model, tokenizer, full, read_pairs(heldout_pairs, cfg.limit), batch_size)
    layer = max(scores, key=lambda k: (scores[k]["accuracy"], scores[k]["d"]))
    vector = type(full)({layer: full.layer_activations[layer]}, full.layer_type)
    info = {"layer": layer, "rule": "separation", "n_layers": n, "separation": {str(k): v for k, v in scores.items()}}
    return VectorSteering(model, vector, layer), info


# --------------------------------------------------------------------------------------------- equal KL
def equal_kl_settings(model, tokenizer, steering: VectorSteering, cfg: VectorArms, batch_size: int) -> dict:
    """α⁺/α⁻ of the adapter and c⁺/c⁻ of the vector that reach ``cfg.target_kl``, both measured by
    :func:`wsteer.adapters.calibrate.search_alphas` on the same prompts and base answers. With
    ``cfg.match_alpha`` the adapter is not searched: α± = ±match_alpha, and each sign's c is searched to the KL the
    adapter has there."""
    from wsteer.adapters.calibrate import DEFAULT_PROMPTS, CalibrateConfig, measure, search_alphas

    calibration = CalibrateConfig(
        prompts=list(DEFAULT_PROMPTS[: cfg.calibration_prompts]),
        max_new_tokens=cfg.calibration_tokens,
        target_kl=cfg.target_kl,
        rel_tol=cfg.rel_tol,
        max_alpha=cfg.max_coefficient,
        batch_size=batch_size,
    )
    if cfg.match_alpha is None:
        adapter = search_alphas(model, tokenizer, calibration.prompts, calibration, progress=False)
        alphas = (adapter.alpha_plus, adapter.alpha_minus)
        kls = (adapter.plus.kl_quantile, adapter.minus.kl_quantile)
        targets = None
    else:  # the KL budget is what the adapter spends at ±match_alpha, measured exactly as the search measures c
        alphas = (cfg.match_alpha, -cfg.match_alpha)
        measured = measure(
            model,
            tokenizer,
            calibration.prompts,
            alphas,
            calibration.max_new_tokens,
            calibration.quantile,
            batch_size,
            calibration.tokens,
        )
        kls = targets = tuple(measured[a].kl_quantile for a in alphas)
    vector = search_alphas(
        model, tokenizer, calibration.prompts, calibration, progress=False, steering=steering, targets=targets
    )
    return {
        "target_kl": cfg.target_kl if cfg.match_alpha is None else None,
        "match_alpha": cfg.match_alpha,
        "quantile": calibration.quantile,
        "alpha_plus": alphas[0],
        "alpha_minus": alphas[1],
        "kl_alpha_plus": kls[0],
        "kl_alpha_minus": kls[1],
        "c_plus": vector.alpha_plus,
        "c_minus": vector.alpha_minus,
        "kl_c_plus": vector.plus.kl_quantile,
        "kl_c_minus": vector.minus.kl_quantile,
        "n_prompts": len(calibration.prompts),
        "max_new_tokens": calibration.max_new_tokens,
    }
