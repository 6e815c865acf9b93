"""The combine and inspect verbs (the combine arithmetic itself is tested in tests/core/test_lora.py)."""

import json

import pytest
import torch
from adapter_helpers import (
    load_checkpoint,
    make_adapter,
    one_line_error,
    read_json,
    write_steering,
)
from wsteer.adapters.inspect import inspect_adapter

from wsteer.lora import adapter_deltas, read_adapter
from wsteer.records import read_steering_info
from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory, tokenizer):
    """(base_dir, honest, authority): two adapters of one base with steering.json, different ranks/targets."""
    root = tmp_path_factory.mktemp("combine")
    base_dir = save_tiny_model(root / "base", seed=0)
    base = load_checkpoint(base_dir)
    make_adapter(base, root / "honest", seed=1, r=4, alpha=8)
    write_steering(root / "honest", base_dir, calibrated_alpha={"plus": 2.0, "minus": -1.5})
    make_adapter(base, root / "authority", seed=2, r=2, alpha=16, targets=["q_proj", "up_proj"], use_rslora=True)
    write_steering(
        root / "authority",
        base_dir,
        pos="defies authority to protect others",
        neg="defers to authority even when others suffer",
    )
    return base_dir, root / "honest", root / "authority"


def test_combine_verb_writes_the_signed_sum_of_deltas_per_layer(cli, two_adapters, tmp_path):
    _, honest, authority = two_adapters
    out = tmp_path / "mix"
    result = cli("adapters", "combine", f"{honest}:+1.0", f"{authority}:-0.5", f"out={out}")
    assert result.code == 0, result.err
    assert str(out) in result.out
    dh, da, dc = (adapter_deltas(read_adapter(p)) for p in (honest, authority, out))
    assert set(dc) == set(dh) | set(da)
    for module, delta in dc.items():
        expected = dh.get(module, 0) - 0.5 * da.get(module, torch.zeros_like(delta))
        assert torch.allclose(delta, expected, atol=1e-5), module
    info = read_steering_info(out)
    assert info.objective == "combined" and info.calibrated_alpha is None
    assert "+1·[honest]" in info.pos and "-0.5·[defies authority to protect others]" in info.pos
    assert info.base_hash == read_steering_info(honest).base_hash
    parts = info.provenance["combine"]
    assert [p["weight"] for p in parts] == [1.0, -0.5] and parts[0]["calibrated_alpha"]["plus"] == 2.0
    assert read_json(out / "manifest.json")["stage"] == "adapters.combine"


def test_combine_refuses_adapters_of_different_bases(cli, two_adapters, tmp_path):
    base_dir, honest, _ = two_adapters
    other_base = save_tiny_model(tmp_path / "other", seed=1)
    other = tmp_path / "other_adapter"
    make_adapter(load_checkpoint(other_base), other, seed=3)
    write_steering(other, other_base)
    result = cli("adapters", "combine", f"{honest}:1", f"{other}:1", f"out={tmp_path / 'out'}")
    assert "different bases" in one_line_error(result)
    assert not (tmp_path / "out").exists()
    # plain peft adapters (no steering.json): recorded base names must agree unless explicitly allowed
    plain_a, plain_b = tmp_path / "plain_a", tmp_path / "plain_b"
    make_adapter(load_checkpoint(base_dir), plain_a, seed=4)
    make_adapter(load_checkpoint(other_base), plain_b, seed=5)
    result = cli("adapters", "combine", f"{plain_a}:1", f"{plain_b}:-1", f"out={tmp_path / 'out'}")
    assert "cannot verify" in one_line_error(result) and not (tmp_path / "out").exists()
    result = cli(
        "adapters", "combine", f"{plain_a}:1", f"{plain_b}:-1", f"out={tmp_path / 'out'}", "allow_unverified_base=true"
    )
    assert result.code == 0, result.err
    assert not (tmp_path / "out" / "steering.json").exists()  # nothing to describe: plain inputs, plain output


def test_inspect_reports_personas_rank_targets_norms_and_calibration(cli, two_adapters):
    _, honest, authority = two_adapters
    report = inspect_adapter(honest)
    deltas = adapter_deltas(read_adapter(honest))
    assert report["pos"] == "honest" and report["objective"] == "dpo" and report["rank"] == 4
    assert report["target_modules"] == ["down_proj", "q_proj", "v_proj"] and len(report["modules"]) == 6
    for row in report["modules"]:
        assert row["delta_norm"] == pytest.approx(float(deltas[row["module"]].norm()), rel=1e-6)
    layer0 = [float(d.norm()) ** 2 for m, d in deltas.items() if ".layers.0." in m]
    assert report["delta_norm_by_layer"]["0"] == pytest.approx(sum(layer0) ** 0.5, rel=1e-6)
    assert report["calibrated_alpha"] == {"plus": 2.0, "minus": -1.5}
    assert report["metrics"] == {"train_loss": 0.42}

    text = cli("adapters", "inspect", honest)
    assert text.code == 0, text.err
    for needle in ("honest", "dishonest", "r=4", "q_proj", "plus=2", "train_loss=0.42", "layer"):
        assert needle in text.out, needle
    as_json = cli("adapters", "inspect", authority, "json=true")
    parsed = json.loads(as_json.out)
    assert parsed["use_rslora"] is True and parsed["target_modules"] == ["q_proj", "up_proj"]
    assert parsed["modules"][0]["scaling"] == pytest.approx(16 / 2**0.5)


def test_inspect_works_on_a_plain_peft_adapter(cli, two_adapters, tmp_path):
    base_dir, _, _ = two_adapters
    make_adapter(load_checkpoint(base_dir), tmp_path / "plain", seed=6)
    result = cli("adapters", "inspect", tmp_path / "plain")
    assert result.code == 0, result.err
    assert "plain peft adapter" in result.out and "calibrate" in result.out
    report = inspect_adapter(tmp_path / "plain")
    assert report["pos"] is None and report["base_model"] == str(base_dir) and report["total_delta_norm"] > 0
