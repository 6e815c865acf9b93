"""One scoring kernel: eval's KL/perplexity, calibration's KLMeter and the training metric (preference margins)
agree with a plain, unbatched, unpadded forward of each row on a steered tiny model."""

import math

import pytest
import torch
from adapter_helpers import load_checkpoint, make_adapter, write_steering
from wsteer.adapters.calibrate import KLMeter
from wsteer.eval.scoring import kl_and_perplexity

from wsteer.chat import build_messages, encode_completion, encode_prompt, persona_messages
from wsteer.lora import scaled_adapter
from wsteer.scoring import preference_margins, token_kl
from wsteer.testing import save_tiny_model

ALPHA = 1.5
PROMPTS = ["Why is the sky blue?", "Write two sentences about the ocean, please, and keep them short."]
TEXTS = ["Because of scattering.", "Waves roll in. Gulls cry over the long grey water."]


@pytest.fixture(scope="module")
def steerable(tmp_path_factory):
    from wsteer.adapters.loading import load_steerable

    root = tmp_path_factory.mktemp("kernel")
    base_dir = save_tiny_model(root / "base", seed=0, initializer_range=0.3)
    make_adapter(load_checkpoint(base_dir), root / "adapter", seed=1, scale=0.5)
    write_steering(root / "adapter", base_dir)
    return load_steerable(root / "adapter")


def reference_log_softmax(model, ids: list[int], first: int, count: int, alpha: float) -> torch.Tensor:
    """log-softmax [count, V] of one row, alone (no padding, no batch), with the adapter at ``alpha``."""
    with torch.no_grad(), scaled_adapter(model, alpha):
        logits = model(input_ids=torch.tensor([ids])).logits[0]  # [T, V]
    return torch.log_softmax(logits.double(), -1)[first : first + count]


def reference_kl_and_nll(model, prompt_ids, completion_ids, count, alpha, base_prompt_ids=None):
    """Per-token KL(steered ‖ base) over ``count`` positions and the base NLL of the completion tokens."""
    base_prompt_ids = base_prompt_ids or prompt_ids
    log_s = reference_log_softmax(model, prompt_ids + completion_ids, len(prompt_ids) - 1, count, alpha)
    log_b = reference_log_softmax(model, base_prompt_ids + completion_ids, len(base_prompt_ids) - 1, count, 0.0)
    kl = (log_s.exp() * (log_s - log_b)).sum(-1)  # [count]
    nll = -log_b[: len(completion_ids)].gather(-1, torch.tensor(completion_ids).unsqueeze(-1)).squeeze(-1)
    return kl, nll


def test_eval_kl_and_perplexity_match_a_row_by_row_forward(steerable):
    model, tokenizer = steerable
    pos_convs = [persona_messages(p, "You are {persona}.", "an honest person") for p in PROMPTS]
    got = kl_and_perplexity(
        model, lambda a, b: scaled_adapter(model, ALPHA), model, tokenizer, pos_convs, PROMPTS, TEXTS, batch_size=2
    )
    for conv, prompt, text, row in zip(pos_convs, PROMPTS, TEXTS, got):
        completion = encode_completion(tokenizer, text)
        bare = encode_prompt(tokenizer, build_messages(prompt))
        kl, nll = reference_kl_and_nll(
            model, encode_prompt(tokenizer, conv), completion, len(completion), ALPHA, base_prompt_ids=bare
        )
        assert row["kl"] > 1e-3  # the persona prompt and the adapter both move the arm off the base
        assert row["kl"] == pytest.approx(float(kl.mean()), rel=1e-4)
        assert row["perplexity"] == pytest.approx(math.exp(float(nll.mean())), rel=1e-4)


def test_calibration_meter_matches_a_row_by_row_forward(steerable):
    model, tokenizer = steerable
    meter = KLMeter(model, tokenizer, PROMPTS, max_new_tokens=8)
    measured = meter([ALPHA])[ALPHA]
    kls, nlls = [], []
    for answer in meter.base_answers():
        count = len(answer.token_ids) + int(answer.stopped)  # the EOS position counts when the answer stopped
        kl, nll = reference_kl_and_nll(model, answer.prompt_ids, answer.token_ids, count, ALPHA)
        kls.append(kl)
        nlls.append(nll)
    kl, nll = torch.cat(kls), torch.cat(nlls)
    assert measured.positions == kl.numel() > 0
    assert measured.kl_mean > 1e-4
    assert measured.kl_mean == pytest.approx(float(kl.mean()), rel=1e-4)
    assert measured.kl_quantile == pytest.approx(float(torch.quantile(kl, 0.95)), rel=1e-4)
    assert measured.base_perplexity == pytest.approx(math.exp(float(nll.mean())), rel=1e-4)


def test_training_margin_matches_a_row_by_row_forward(steerable):
    model, tokenizer = steerable
    chosen, rejected = TEXTS, list(reversed(TEXTS))
    with scaled_adapter(model, ALPHA):
        got = preference_margins(model, tokenizer, PROMPTS, chosen, rejected, batch_size=4)

    def mean_logp(prompt: str, text: str) -> float:
        ids = encode_prompt(tokenizer, build_messages(prompt))
        completion = encode_completion(tokenizer, text)
        log_p = reference_log_softmax(model, ids + completion, len(ids) - 1, len(completion), ALPHA)
        return float(log_p.gather(-1, torch.tensor(completion).unsqueeze(-1)).mean())

    expected = [mean_logp(p, c) - mean_logp(p, r) for p, c, r in zip(PROMPTS, chosen, rejected)]
    assert got == pytest.approx(expected, abs=1e-4)
    assert abs(got[0]) > 1e-3


def test_token_kl_is_zero_on_itself_and_positive_elsewhere():
    torch.manual_seed(0)
    log_p = torch.log_softmax(torch.randn(3, 7), -1)
    log_q = torch.log_softmax(torch.randn(3, 7), -1)
    assert torch.allclose(token_kl(log_p, log_p), torch.zeros(3), atol=1e-7)
    expected = (log_p.exp() * (log_p - log_q)).sum(-1)
    assert torch.allclose(token_kl(log_p, log_q), expected) and (expected > 0).all()
