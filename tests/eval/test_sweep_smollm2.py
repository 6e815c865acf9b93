"""Slow: per-row α scaling on the real SmolLM2 equals steering each α on its own, token for token."""

import pytest
import torch

from wsteer.chat import build_messages
from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
from wsteer.lora import per_row_adapter_scale, scaled_adapter

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]
PROMPTS = [
    "Should I tell my friend the truth about her cooking?",
    "Write one sentence about the sea.",
    "How do I apologise to a colleague?",
]


@pytest.mark.slow
def test_batched_alphas_equal_each_alpha_alone_on_smollm2():
    from peft import LoraConfig, get_peft_model

    from wsteer.models import load_model, load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    config = LoraConfig(
        r=8, lora_alpha=8, init_lora_weights=False, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]
    )
    model = get_peft_model(load_model("smollm2-135m"), config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.5)
    greedy = SamplingConfig(max_new_tokens=16, temperature=0.0)
    requests = [GenerationRequest(build_messages(p), tag=a) for a in ALPHAS for p in PROMPTS]
    batched = HFBackend(model, tokenizer, batch_size=len(requests)).generate(
        requests, greedy, batch_hook=lambda batch: per_row_adapter_scale(model, [r.tag for r in batch])
    )
    alone = {}
    for alpha in ALPHAS:
        with scaled_adapter(model, alpha):
            alone[alpha] = HFBackend(model, tokenizer, batch_size=len(PROMPTS)).generate(
                [GenerationRequest(build_messages(p)) for p in PROMPTS], greedy
            )
    for generation in batched:
        index = PROMPTS.index(generation.request.messages[-1]["content"])
        assert generation.token_ids == alone[generation.request.tag][index].token_ids, generation.request.tag
    changed = [a for a in ALPHAS if [g.token_ids for g in alone[a]] != [g.token_ids for g in alone[0.0]]]
    assert len(changed) >= 2, "the adapter must change the answers at some α"
