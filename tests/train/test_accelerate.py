"""The accelerate launch configs: each loads with accelerate's own loader and names a train config that loads; and
`accelerate launch --config_file accelerate_config.yaml -m wsteer.train` runs the training code in 2 processes. Without
GPUs accelerate 1.15 runs the FSDP config as DDP over gloo (MULTI_CPU), so this checks the launch path and the
data-parallel arithmetic (same adapter as one process with the same global batch), not FSDP sharding itself."""

import json
import os
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCELERATE_CONFIGS = [REPO_ROOT / "accelerate_config.yaml", *sorted((REPO_ROOT / "configs/accelerate").glob("*.yaml"))]
EXPECTED = {
    "accelerate_config.yaml": "FSDP",
    "ddp.yaml": "MULTI_GPU",
    "deepspeed_zero3.yaml": "DEEPSPEED",
    "fsdp_qlora.yaml": "FSDP",
}


def launch_words(path: Path) -> list[str]:
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.lower().startswith("# launch:"):
            return shlex.split(line.split(":", 1)[1])
    raise AssertionError(f"{path} has no '# Launch: …' header line")


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_config_loads_with_accelerate_and_its_launch_line_works(path, monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    from wsteer.cli import build_parser
    from wsteer.cliargs import config_from_args

    monkeypatch.chdir(REPO_ROOT)
    config = load_config_from_file(str(path))
    assert config.distributed_type.value == EXPECTED[path.name]
    words = launch_words(path)
    assert words[:2] == ["accelerate", "launch"] and words[words.index("--config_file") + 1] == str(
        path.relative_to(REPO_ROOT)
    ), "the launch line must use this file"
    module, *train_args = words[words.index("-m") + 1 :]
    assert module == "wsteer.train"
    train_argv = ["train", *train_args]  # `-m wsteer.train …` is `wsteer train …`
    assert config_from_args(build_parser().parse_args(train_argv)) is not None  # the named train config loads

    args = launch_command_parser().parse_args(words[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. keys that do not apply to this FSDP version
        args, _, _ = _validate_launch_command(args)
    if args.use_fsdp:
        env = prepare_multi_gpu_env(args)
        with mock.patch.dict(os.environ, env), warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                plugin = FullyShardedDataParallelPlugin()
            except RuntimeError as exc:  # FSDP1 + sync_module_states wants a GPU to build on
                # accelerate <= 1.15 says "no available devices", 1.16 "... is not supported on cpu"
                assert "no available devices" in str(exc) or "not supported on cpu" in str(exc)
                return
        assert plugin.fsdp_version == int(env["FSDP_VERSION"])


def test_accelerate_launch_of_the_root_config_trains_like_one_process(tmp_path, tiny_dir, pairs_file):
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    config = tmp_path / "train.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        data: {pairs_file}
        model: {{name: {tiny_dir}}}
        lora: {{r: 4, alpha: 8}}
        epochs: 1
        learning_rate: 0.01
        progress: false
        precompute_ref: false
        mixed_precision: fp32
        """)
    )
    fsdp_out = tmp_path / "fsdp"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(REPO_ROOT / "accelerate_config.yaml"),
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
            "-m",
            "train",
            "--config",
            str(config),
            f"output_dir={fsdp_out}",
            "batch_size=2",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((fsdp_out / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert manifest["distributed_type"] == ("FSDP" if torch.cuda.is_available() else "MULTI_CPU")

    single_out = tmp_path / "single"
    train_adapter(load_config(TrainConfig, config, [f"output_dir={single_out}", "batch_size=4", "num_threads=1"]))
    sharded, single = (
        load_file(fsdp_out / "adapter_model.safetensors"),
        load_file(single_out / "adapter_model.safetensors"),
    )
    assert sharded.keys() == single.keys()
    for name in single:  # 2 ranks x 2 pairs = one process x 4 pairs, same order: the same updates
        assert sharded[name].shape == single[name].shape
        assert torch.allclose(sharded[name], single[name], atol=1e-5), name
    assert any(t.abs().max() > 0 for name, t in single.items() if "lora_B" in name)
