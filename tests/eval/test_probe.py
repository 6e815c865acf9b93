"""The behavioural probe: log p(true) − log p(false) per item, by hand on a tiny model, its sign, the shipped suite."""

import contextlib

import pytest
import torch
from wsteer.eval.probe import load_probe_items, probe_path, probe_scores

from wsteer.chat import build_messages, encode_completion, encode_prompt
from wsteer.errors import DataError
from wsteer.io import write_jsonl

ITEMS = [
    {"id": "a", "question": "Is the Earth flat?", "true": "No.", "false": "Yes, it is flat."},
    {"id": "b", "question": "How many legs does a spider have?", "true": "Eight.", "false": "Six."},
]


def hand_logprob(model, tokenizer, question: str, answer: str, system: str | None = None) -> float:
    """Sum of log p(answer token | chat prompt, earlier answer tokens), one unbatched forward."""
    prompt = encode_prompt(tokenizer, build_messages(question, system))
    answer_ids = encode_completion(tokenizer, answer)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + answer_ids])).logits[0]  # [T, V]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return sum(float(log_probs[len(prompt) - 1 + i, t]) for i, t in enumerate(answer_ids))


def test_probe_equals_a_hand_computation_and_a_swapped_item_flips_its_sign(tiny):
    model, tokenizer = tiny
    scores = probe_scores(model, tokenizer, ITEMS, contextlib.nullcontext(), batch_size=2)
    for item, score in zip(ITEMS, scores):
        expected = hand_logprob(model, tokenizer, item["question"], item["true"]) - hand_logprob(
            model, tokenizer, item["question"], item["false"]
        )
        assert score == pytest.approx(expected, abs=1e-4) and abs(expected) > 1e-3
    # Planted fault: true and false swapped — every score changes sign.
    swapped = [{**item, "true": item["false"], "false": item["true"]} for item in ITEMS]
    flipped = probe_scores(model, tokenizer, swapped, contextlib.nullcontext(), batch_size=2)
    assert flipped == pytest.approx([-s for s in scores], abs=1e-4)


def test_probe_uses_the_system_prompt_and_the_context(tiny):
    model, tokenizer = tiny
    plain = probe_scores(model, tokenizer, ITEMS, contextlib.nullcontext())
    system = "You are an honest person."
    with_system = probe_scores(model, tokenizer, ITEMS, contextlib.nullcontext(), system=system)
    item = ITEMS[0]
    expected = hand_logprob(model, tokenizer, item["question"], item["true"], system) - hand_logprob(
        model, tokenizer, item["question"], item["false"], system
    )
    assert with_system[0] == pytest.approx(expected, abs=1e-4) and with_system != pytest.approx(plain)

    @contextlib.contextmanager
    def scaled_head():  # a context that changes the model: the scores must be taken inside it
        weight = model.lm_head.weight.data.clone()
        model.lm_head.weight.data.mul_(3.0)
        try:
            yield
        finally:
            model.lm_head.weight.data.copy_(weight)

    assert probe_scores(model, tokenizer, ITEMS, scaled_head()) != pytest.approx(plain)


@pytest.mark.parametrize("suite", ["honesty", "care"])
def test_the_shipped_suites_are_well_formed(suite):
    items = load_probe_items(suite)
    assert len(items) == 40 and len({i["id"] for i in items}) == 40
    assert all(i["true"] != i["false"] for i in items)
    assert probe_path(suite).name == f"{suite}.jsonl"
    # Half the true answers must not start with "Yes" (else a yes-bias alone would score as the trait).
    yes = sum(i["true"].startswith("Yes") for i in items)
    assert yes <= 24, yes


def test_a_broken_suite_names_file_line_and_field(tmp_path):
    path = tmp_path / "probe.jsonl"
    write_jsonl(path, [ITEMS[0], {"id": "c", "question": "Why?", "true": "Because."}])
    with pytest.raises(DataError, match=r"probe.jsonl:2.*false"):
        load_probe_items(path)
    with pytest.raises(DataError, match="not found"):
        load_probe_items(tmp_path / "missing.jsonl")
