"""The verbs through the CLI: success paths print where results went; bad inputs give one error line and write
nothing."""

import json

import pytest
from adapter_helpers import (
    load_checkpoint,
    make_adapter,
    one_line_error,
    read_json,
    write_steering,
)

from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    """(root, base_dir, adapter with steering.json, plain adapter without)."""
    root = tmp_path_factory.mktemp("cli")
    base_dir = save_tiny_model(root / "base", seed=0, max_shard_size="100KB")
    base = load_checkpoint(base_dir)
    make_adapter(base, root / "adapter", seed=1)
    write_steering(root / "adapter", base_dir)
    make_adapter(base, root / "plain", seed=2)
    return root, base_dir, root / "adapter", root / "plain"


def assert_nothing_written(out):
    assert not out.exists(), f"{out} was written"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, leftovers


def test_merge_and_steer_verbs(cli, setup, tmp_path):
    _, _, adapter, _ = setup
    result = cli("adapters", "merge", adapter, "alpha=-1.5", f"out={tmp_path / 'merged'}")
    assert result.code == 0, result.err
    assert str(tmp_path / "merged") in result.out and "α = -1.5" in result.out
    assert read_json(tmp_path / "merged" / "steering.json")["provenance"]["merge"]["alpha"] == -1.5
    again = cli("adapters", "merge", adapter, "alpha=1", f"out={tmp_path / 'merged'}")
    assert "already exists" in one_line_error(again)
    assert read_json(tmp_path / "merged" / "steering.json")["provenance"]["merge"]["alpha"] == -1.5
    assert cli("adapters", "merge", adapter, "alpha=1", f"out={tmp_path / 'merged'}", "overwrite=true").code == 0
    assert read_json(tmp_path / "merged" / "steering.json")["provenance"]["merge"]["alpha"] == 1.0

    steered = cli(
        "adapters", "steer", adapter, "alphas=[-1, 0, 1]", "prompts=[Hi]", "sampling.max_new_tokens=6", "json=true"
    )
    assert steered.code == 0, steered.err
    rows = [json.loads(line) for line in steered.out.splitlines()]
    assert [r["alpha"] for r in rows] == [-1.0, 0.0, 1.0] and all(r["prompt"] == "Hi" for r in rows)
    assert len({r["text"] for r in rows}) > 1  # the adapter changes what the model writes


@pytest.mark.parametrize("alpha", ["nan", "inf", "-inf"])
def test_non_finite_alpha_is_refused(cli, setup, tmp_path, alpha):
    _, _, adapter, _ = setup
    out = tmp_path / "out"
    line = one_line_error(cli("adapters", "merge", adapter, f"alpha={alpha}", f"out={out}"))
    assert "finite" in line and "alpha" in line
    assert_nothing_written(out)
    line = one_line_error(cli("adapters", "steer", adapter, f"alphas=[{alpha}]", "prompts=[Hi]"))
    assert "finite" in line
    line = one_line_error(cli("adapters", "combine", f"{adapter}:{alpha}", f"out={out}"))
    assert "not finite" in line
    assert_nothing_written(out)
    line = one_line_error(cli("adapters", "calibrate", adapter, f"target_kl={alpha}"))
    assert "target_kl" in line and "finite" in line


def test_wrong_base_is_refused(cli, setup, tmp_path):
    _, _, adapter, _ = setup
    other = save_tiny_model(tmp_path / "other", seed=5)  # same architecture and shapes, other weights
    out = tmp_path / "out"
    line = one_line_error(cli("adapters", "merge", adapter, "alpha=1", f"out={out}", f"base={other}"))
    assert "wrong base" in line and "steering.json" in line and "fix:" in line
    assert_nothing_written(out)
    line = one_line_error(cli("adapters", "calibrate", adapter, f"base={other}", f"report={tmp_path / 'r.json'}"))
    assert "wrong base" in line
    assert not (tmp_path / "r.json").exists() and not (adapter / "calibration.json").exists()


def test_shape_mismatch_is_refused(cli, setup, tmp_path):
    _, _, _, plain = setup
    wide = save_tiny_model(tmp_path / "wide", seed=0, hidden_size=48, intermediate_size=96)
    out = tmp_path / "out"
    line = one_line_error(cli("adapters", "merge", plain, "alpha=1", f"out={out}", f"base={wide}"))
    assert "shape mismatch" in line and "model.layers.0" in line
    assert_nothing_written(out)
    other_plain = tmp_path / "wide_adapter"
    make_adapter(load_checkpoint(wide), other_plain, seed=3)
    line = one_line_error(
        cli("adapters", "combine", f"{plain}:1", f"{other_plain}:1", f"out={out}", "allow_unverified_base=true")
    )
    assert "shape mismatch" in line
    assert_nothing_written(out)


def test_missing_files_are_refused(cli, setup, tmp_path):
    _, base_dir, adapter, plain_adapter = setup
    out = tmp_path / "out"
    line = one_line_error(cli("adapters", "merge", tmp_path / "nowhere", "alpha=1", f"out={out}"))
    assert "not found" in line
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    line = one_line_error(cli("adapters", "merge", broken, "alpha=1", f"out={out}"))
    assert "adapter_model.safetensors is missing" in line
    line = one_line_error(cli("adapters", "inspect", broken))
    assert "adapter_model.safetensors is missing" in line
    line = one_line_error(cli("adapters", "combine", f"{adapter}:1", f"{broken}:1", f"out={out}"))
    assert "adapter_model.safetensors is missing" in line
    assert_nothing_written(out)

    # a sharded base with one shard gone: refused before anything is written
    import shutil

    holey = tmp_path / "holey"
    shutil.copytree(base_dir, holey)
    index = read_json(holey / "model.safetensors.index.json")
    (holey / sorted(set(index["weight_map"].values()))[-1]).unlink()
    plain = tmp_path / "plain_for_holey"
    shutil.copytree(plain_adapter, plain)
    line = one_line_error(cli("adapters", "merge", plain, "alpha=1", f"out={out}", f"base={holey}"))
    assert "is missing" in line and "shard" in line
    assert_nothing_written(out)

    line = one_line_error(cli("adapters", "calibrate"))
    assert "no adapter given" in line


def test_calibrate_launch_line_forms(cli, setup, tmp_path):
    """`calibrate ADAPTER key=value` and `calibrate key=value` both parse; the first key=value is not the adapter."""
    _, _, adapter, _ = setup
    line = one_line_error(cli("adapters", "calibrate", "target_kl=0.5", f"adapter={tmp_path / 'none'}"))
    assert "not found" in line and "none" in line
    line = one_line_error(cli("adapters", "calibrate", adapter, "tokens=sideways"))
    assert "tokens" in line and "'base'" in line


def test_verbs_take_a_config_file_and_key_value_overrides(cli, setup, tmp_path):
    """adapters merge/combine/inspect read --config FILE; key=value overrides it; the positional is optional."""
    _, _, adapter, plain = setup
    config = tmp_path / "merge.yaml"
    config.write_text(f"adapter: {adapter}\nalpha: 2.0\nout: {tmp_path / 'from_file'}\n")
    result = cli("adapters", "merge", "--config", config, "alpha=-0.5")
    assert result.code == 0, result.err
    assert read_json(tmp_path / "from_file" / "steering.json")["provenance"]["merge"]["alpha"] == -0.5
    line = one_line_error(cli("adapters", "merge", "--config", config, "alhpa=1"))
    assert "'alhpa'" in line and "'alpha'" in line
    line = one_line_error(cli("adapters", "merge", f"out={tmp_path / 'x'}", "alpha=1"))
    assert "no adapter given" in line
    assert not (tmp_path / "x").exists()

    parts = tmp_path / "combine.yaml"
    parts.write_text(f"parts: ['{adapter}:1', '{plain}:-1']\nallow_unverified_base: true\n")
    result = cli("adapters", "combine", "--config", parts, f"out={tmp_path / 'mix'}")
    assert result.code == 0, result.err
    assert [p["weight"] for p in read_json(tmp_path / "mix" / "steering.json")["provenance"]["combine"]] == [1, -1]

    inspected = cli("adapters", "inspect", f"adapter={adapter}", "json=true")
    assert inspected.code == 0 and json.loads(inspected.out)["adapter"] == str(adapter)
