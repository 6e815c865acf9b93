"""The fast nucleus filter keeps exactly what transformers' TopPLogitsWarper keeps."""

import pytest
import torch
from transformers import TopPLogitsWarper

from wsteer.generation import NucleusFilter


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])  # flat (falls back to the full sort) to peaked
def test_same_tokens_as_transformers(top_p, scale):
    generator = torch.Generator().manual_seed(int(top_p * 1000) + int(scale * 10))
    scores = torch.randn(8, 5000, generator=generator) * scale
    ids = torch.zeros((8, 3), dtype=torch.long)
    reference = TopPLogitsWarper(top_p)(ids, scores.clone())
    fast = NucleusFilter(top_p, candidates=256)(ids, scores.clone())
    assert torch.equal(torch.isinf(fast), torch.isinf(reference))
    assert torch.equal(fast[~torch.isinf(fast)], scores[~torch.isinf(reference)])


def test_keeps_at_least_one_token_and_handles_banned_entries():
    scores = torch.tensor([[10.0, 0.0, float("-inf"), -1.0], [float("-inf"), 2.0, 1.0, float("-inf")]])
    out = NucleusFilter(0.5, candidates=2)(torch.zeros((2, 1), dtype=torch.long), scores)
    assert torch.isfinite(out).tolist() == [[True, False, False, False], [False, True, False, False]]
    assert out[0, 0] == 10.0 and out[1, 1] == 2.0
