import math
from collections import Counter

import pytest
import torch

from wsteer.chat import build_messages
from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig, SeededGumbelSampler

PROMPTS = ["Write a haiku.", "Name a colour.", "Explain recursion in one long sentence please.", "Hi"]


def test_batched_greedy_equals_one_at_a_time(tiny):
    model, tokenizer = tiny
    requests = [GenerationRequest(build_messages(p)) for p in PROMPTS]
    greedy = SamplingConfig(max_new_tokens=12, temperature=0.0)
    batched = HFBackend(model, tokenizer, batch_size=4).generate(requests, greedy)
    single = HFBackend(model, tokenizer, batch_size=1).generate(requests, greedy)
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert all(len(g.token_ids) == 12 and g.finish_reason == "length" for g in batched)


def test_seeded_sampling_is_per_row(tiny):
    model, tokenizer = tiny
    sampling = SamplingConfig(max_new_tokens=10, temperature=1.0, top_p=1.0)
    backend = HFBackend(model, tokenizer, batch_size=8)
    target = GenerationRequest(build_messages("Tell me a story."), seed=7)
    alone = backend.generate([target], sampling)[0]
    others = [GenerationRequest(build_messages(p), seed=s) for s, p in enumerate(PROMPTS)]
    in_batch = backend.generate(others[:2] + [target] + others[2:], sampling)[2]
    assert alone.token_ids == in_batch.token_ids  # a row's sample does not depend on its batch
    reseeded = backend.generate([GenerationRequest(target.messages, seed=8)], sampling)[0]
    assert reseeded.token_ids != alone.token_ids


def test_gumbel_sampler_matches_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]])
    probs = torch.softmax(logits, -1)[0]
    draws = Counter()
    n = 4000
    for seed in range(n):
        draws[int(SeededGumbelSampler([seed])(None, logits).argmax())] += 1
    assert draws[4] == 0  # filtered tokens are never drawn
    for token in range(4):
        expected = probs[token].item()
        # 5 standard errors of a binomial proportion
        assert abs(draws[token] / n - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_stop_token_ends_answer_and_is_not_in_text(tiny):
    model, tokenizer = tiny
    eos = tokenizer.eos_token_id
    # rig the output head so that EOS always wins
    model.lm_head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[eos] = 10.0
    out = HFBackend(model, tokenizer).generate(
        [GenerationRequest(build_messages("hi"))], SamplingConfig(max_new_tokens=5, temperature=0.0)
    )[0]
    assert out.finish_reason == "stop" and out.token_ids == [] and out.text == ""


def test_prompt_over_limit_names_request(tiny):
    model, tokenizer = tiny
    from wsteer.errors import WsteerError

    backend = HFBackend(model, tokenizer, max_prompt_tokens=60)
    with pytest.raises(WsteerError, match=r"request 1 .* over the limit of 60"):
        backend.generate(
            [GenerationRequest(build_messages("ok")), GenerationRequest(build_messages("word " * 50))], SamplingConfig()
        )


def test_sampling_config_validation():
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)
    with pytest.raises(ValueError):
        SamplingConfig(temperature=-1)
