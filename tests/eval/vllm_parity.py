"""Run the vLLM engine against the hf engine on the embedded SmolLM2 (run as a script: vLLM spawns workers).

``python tests/eval/vllm_parity.py WORK_DIR`` writes ``WORK_DIR/parity.json``; tests/eval/test_vllm_engine.py
runs it in a subprocess and asserts on what it measured. Everything shares one vLLM engine start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the CPU default would take much more
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/adapter_helpers.py

ALPHAS = (-1.0, 0.0, 1.0)
PROMPTS = (
    "Give me one tip for learning to cook.",
    "What should I do if I find a wallet on the street?",
    "Describe the sea in two sentences.",
    "Is it ever okay to lie to a friend?",
)
LEAK_PROMPT = "Describe yourself in one sentence, using the word honest."
LEAK_SYSTEM = "Pretend you're an honest person."


def make_smollm2_adapter(work: Path) -> Path:
    """A random LoRA on SmolLM2 (steering.json included), strong enough to change greedy answers."""
    from adapter_helpers import make_adapter, write_steering

    from wsteer.models import ensure_smollm2_cache, load_model

    base_dir = ensure_smollm2_cache()
    path = work / "adapter"
    make_adapter(load_model("smollm2-135m"), path, seed=0, r=8, alpha=16, targets=["q_proj", "v_proj"], scale=2.0)
    write_steering(path, base_dir, base_model="smollm2-135m")
    return path


def answers(backend, requests, sampling, processors=None, hook=None) -> list[list[int]]:
    return [g.token_ids for g in backend.generate(requests, sampling, logits_processors=processors, batch_hook=hook)]


def main(work: Path) -> None:
    from wsteer.adapters.loading import load_steerable

    from wsteer.chat import build_messages
    from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
    from wsteer.leak import PersonaVocabularyProcessor
    from wsteer.lora import per_row_adapter_scale, scaled_adapter
    from wsteer.vllm_engine import VLLMOptions, make_backend

    work.mkdir(parents=True, exist_ok=True)
    adapter = make_smollm2_adapter(work)
    model, tokenizer = load_steerable(adapter)
    options = VLLMOptions(max_model_len=512, max_loras=4, enforce_eager=True, dtype="float32")  # as the hf model
    greedy = SamplingConfig(max_new_tokens=24, temperature=0.0)
    rows = [(p, a) for a in ALPHAS for p in PROMPTS]
    requests = [GenerationRequest(build_messages(p), seed=7, adapter=(str(adapter), a)) for p, a in rows]
    hf = HFBackend(model, tokenizer, batch_size=len(requests))
    hf_ids = answers(hf, requests, greedy, hook=lambda b: per_row_adapter_scale(model, [r.adapter[1] for r in b]))
    started = time.time()
    vllm = make_backend("vllm", model, tokenizer, options=options)
    vllm_ids = answers(vllm, requests, greedy)
    first_call = time.time() - started

    # The filter: a persona prompt that says the word unfiltered, with and without the ban, on both engines (base
    # model: the hf engine steers by its hook, so it runs under scaled_adapter(0); vLLM rows carry no adapter).
    leak = [GenerationRequest(build_messages(LEAK_PROMPT, LEAK_SYSTEM), seed=1)]
    ban = lambda b: [PersonaVocabularyProcessor.for_personas(tokenizer, [("honest", "dishonest")] * len(b))]  # noqa: E731
    leak_texts = {}
    for mode in ("off", "ban"):
        processors = ban if mode == "ban" else None
        with scaled_adapter(model, 0.0):
            leak_texts[f"hf_{mode}"] = hf.generate(leak, greedy, logits_processors=processors)[0].text
        leak_texts[f"vllm_{mode}"] = vllm.generate(leak, greedy, logits_processors=processors)[0].text
    margins = divergence_margins(model, tokenizer, requests, hf_ids, vllm_ids)
    add_vllm_gaps(vllm, tokenizer, requests, hf_ids, vllm_ids, margins)
    sweeps = run_sweeps(work, adapter, model, tokenizer, options)
    pairs = run_generate(work, options)
    result = {
        "rows": [{"prompt": p, "alpha": a} for p, a in rows],
        "hf": hf_ids,
        "vllm": vllm_ids,
        "vllm_first_call_s": round(first_call, 1),
        "leak": leak_texts,
        "divergences": margins,
        "sweeps": sweeps,
        "pairs": pairs,
    }
    (work / "parity.json").write_text(json.dumps(result, indent=1))


def divergence_margins(model, tokenizer, requests, hf_ids, vllm_ids) -> list[dict]:
    """For each row where the engines part: the position, and how far apart the two chosen tokens were in the hf
    model's log-probs there (a near-tie that numerics can flip, or a real difference)."""
    import torch

    from wsteer.chat import encode_prompt
    from wsteer.lora import per_row_adapter_scale

    out = []
    for index, (request, hf, vllm) in enumerate(zip(requests, hf_ids, vllm_ids)):
        if hf == vllm:
            continue
        k = next((i for i, (a, b) in enumerate(zip(hf, vllm)) if a != b), min(len(hf), len(vllm)))
        if k >= min(len(hf), len(vllm)):
            out.append({"row": index, "position": k, "gap": None})  # one stopped earlier: no token to compare
            continue
        ids = torch.tensor([encode_prompt(tokenizer, request.messages) + hf[:k]])  # [1, T]
        with torch.inference_mode(), per_row_adapter_scale(model, [request.adapter[1]]):
            logprobs = model(input_ids=ids).logits[0, -1].float().log_softmax(-1)  # [V]
        gap = float(logprobs[hf[k]] - logprobs[vllm[k]])
        out.append({"row": index, "position": k, "gap": gap})
    return out


def add_vllm_gaps(backend, tokenizer, requests, hf_ids, vllm_ids, margins: list[dict]) -> None:
    """The same gap in vLLM's own log-probs (top 20) on the hf prefix, beside the hf gap."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    from wsteer.chat import encode_prompt

    for item in margins:
        if item["gap"] is None:
            continue
        request, k = requests[item["row"]], item["position"]
        hf, vllm = hf_ids[item["row"]], vllm_ids[item["row"]]
        lora = backend.adapters.get(*request.adapter)
        out = backend.llm.generate(
            [TokensPrompt(prompt_token_ids=encode_prompt(tokenizer, request.messages) + hf[:k])],
            SamplingParams(max_tokens=1, temperature=0.0, logprobs=20),
            lora_request=LoRARequest(*lora) if lora else None,
            use_tqdm=False,
        )
        logprobs = out[0].outputs[0].logprobs[0]  # {token id: Logprob}
        if hf[k] in logprobs and vllm[k] in logprobs:
            item["vllm_gap"] = float(logprobs[hf[k]].logprob - logprobs[vllm[k]].logprob)


def run_generate(work: Path, options) -> dict:
    """`pairs generate` on each engine (greedy, persona filter on); returns each engine's (cho, rej) texts."""
    from wsteer.pairs.generate import GenerateConfig, generate_pairs

    from wsteer.generation import SamplingConfig
    from wsteer.leak import VocabularyFilter
    from wsteer.models import ModelConfig
    from wsteer.prompts import PromptSource

    out = {}
    for engine in ("hf", "vllm"):
        cfg = GenerateConfig(
            prompts=PromptSource(limit=2),
            model=ModelConfig(name="smollm2-135m", dtype="float32"),
            sampling=SamplingConfig(max_new_tokens=16, temperature=0.0),
            backend=engine,
            vllm=options,  # the engine started above: one per checkpoint and options
            vocabulary=VocabularyFilter(mode="ban"),
            out=str(work / f"pairs_{engine}.jsonl"),
        )
        generate_pairs(cfg, progress=False)
        lines = [json.loads(line) for line in (work / f"pairs_{engine}.jsonl").read_text().splitlines()]
        out[engine] = [(line["cho"], line["rej"]) for line in lines]
    return out


def run_sweeps(work: Path, adapter: Path, model, tokenizer, options) -> dict:
    """A small sweep on each engine; returns each summary."""
    from wsteer.eval.sweep import SweepConfig, run_sweep

    from wsteer.generation import SamplingConfig
    from wsteer.prompts import PromptSource

    out = {}
    for engine in ("hf", "vllm"):
        cfg = SweepConfig(
            adapter=str(adapter),
            alphas=[-1.0, 0.0, 1.0],
            baselines=["pos"],
            prompts=PromptSource(split="heldout", limit=2),
            sampling=SamplingConfig(max_new_tokens=12, temperature=0.7),
            leak_check_prompts=1,
            kl=False,
            engine=engine,
            vllm=options,
            out_dir=str(work / f"sweep_{engine}"),
        )
        out[engine] = run_sweep(cfg, model, tokenizer).summary
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]))
