import math

import pytest
import torch

from wsteer.chat import build_messages, encode_prompt
from wsteer.scoring import completion_logprobs, perplexity, persona_log_likelihood_ratio

TEMPLATE = "Pretend you're a {persona} person."


def test_completion_logprobs_match_a_manual_forward(tiny):
    model, tokenizer = tiny
    convs = [build_messages("Say hi."), build_messages("A much longer prompt about the weather today.")]
    texts = ["Hello there!", "It is sunny and warm."]
    batched = completion_logprobs(model, tokenizer, convs, texts, batch_size=2)
    for conv, text, got in zip(convs, texts, batched):
        prompt = encode_prompt(tokenizer, conv)
        completion = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + completion])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], -1)
        expected = [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(completion)]
        assert got == pytest.approx(expected, abs=1e-5)


def test_plr_is_antisymmetric_and_empty_text_is_nan(tiny):
    model, tokenizer = tiny
    prompts, texts = ["Should I lie?", "Tell me about tea."], ["No, tell the truth.", ""]
    forward = persona_log_likelihood_ratio(model, tokenizer, prompts, texts, TEMPLATE, "honest", "dishonest")
    backward = persona_log_likelihood_ratio(model, tokenizer, prompts, texts, TEMPLATE, "dishonest", "honest")
    assert forward[0] == pytest.approx(-backward[0], abs=1e-6) and forward[0] != 0
    assert math.isnan(forward[1])


def test_perplexity_is_exp_of_mean_nll(tiny):
    model, tokenizer = tiny
    [lp] = completion_logprobs(model, tokenizer, [build_messages("q")], ["some answer"])
    [ppl] = perplexity(model, tokenizer, ["q"], ["some answer"])
    assert ppl == pytest.approx(math.exp(-sum(lp) / len(lp)))


def test_preference_margins_are_chosen_minus_rejected(tiny):
    from wsteer.scoring import mean_logprob, preference_margins

    model, tokenizer = tiny
    prompts, cho, rej = ["q1", "q2"], ["yes indeed", "blue"], ["no", "red sky at night"]
    margins = preference_margins(model, tokenizer, prompts, cho, rej)
    lp = completion_logprobs(model, tokenizer, [build_messages(p) for p in prompts * 2], cho + rej)
    assert margins == pytest.approx(
        [mean_logprob(lp[0]) - mean_logprob(lp[2]), mean_logprob(lp[1]) - mean_logprob(lp[3])]
    )


def test_perplexity_of_an_all_but_impossible_answer_is_inf_not_an_error():
    from wsteer.scoring import perplexity_of

    assert perplexity_of([1e4, 2e4]) == math.inf  # exp(15000) overflows a float
    assert perplexity_of([0.5, 1.5]) == pytest.approx(math.e)
    assert math.isnan(perplexity_of([]))
