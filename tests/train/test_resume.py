"""Kill a training process after a checkpoint, rerun the same command: it resumes and ends where an uninterrupted
run ends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)

REPO_ROOT = Path(__file__).resolve().parents[2]

STALL_DRIVER = textwrap.dedent("""
    import sys, time
    from transformers import TrainerCallback
    import wsteer.train.run
    from wsteer.cli import main

    class StallAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 3:
                open(sys.argv[2], "w").write("saved")
                time.sleep(600)  # the test kills or interrupts us here

    real_train_adapter = wsteer.train.run.train_adapter

    def train_adapter(cfg, callbacks=(), launch=None):
        return real_train_adapter(cfg, callbacks=[StallAfterSave()], launch=launch)

    wsteer.train.run.train_adapter = train_adapter  # the CLI imports it at call time
    sys.exit(main(["train", "--config", sys.argv[1]]))
""")


def write_config(path: Path, tiny_dir, pairs_file, out: Path) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        # Launch: wsteer train --config {path}
        data: {pairs_file}
        output_dir: {out}
        model: {{name: {tiny_dir}}}
        lora: {{r: 4, alpha: 8}}
        epochs: 2
        batch_size: 2
        save_steps: 3
        learning_rate: 0.01
        progress: false
        num_threads: 1
        """)
    )
    return path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path, tiny_dir, pairs_file, cli, sig):
    """`wsteer train` killed (or interrupted with Ctrl-C: exit 130, one line, no traceback) after a checkpoint."""
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    out = tmp_path / "killed" / "adapter"
    config = write_config(tmp_path / "train.yaml", tiny_dir, pairs_file, out)
    marker = tmp_path / "saved"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", STALL_DRIVER, str(config), str(marker)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not marker.exists():
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
        process.send_signal(sig)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if sig == signal.SIGINT:
        stderr = process.stderr.read()
        assert code == 130, stderr[-3000:]
        assert "Traceback" not in stderr
        assert stderr.rstrip().splitlines()[-1].startswith("wsteer: interrupted"), stderr[-3000:]
    work = Path(f"{out}.work")
    assert (work / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert not out.exists(), "a killed run must not leave an output directory"
    half_written = work / "checkpoints" / "checkpoint-5"  # as if a later save had been cut off mid-write
    half_written.mkdir()
    (half_written / "adapter_model.safetensors").write_bytes(b"partial")

    rerun = cli("train", "--config", config)  # the same command again, in this process
    assert rerun.code == 0, rerun
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"]["resumed_from"].endswith("checkpoint-3")
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2] and metrics["steps"] == 8

    reference_out = tmp_path / "straight" / "adapter"
    train_adapter(load_config(TrainConfig, config, [f"output_dir={reference_out}"]))
    resumed, straight = (
        load_file(out / "adapter_model.safetensors"),
        load_file(reference_out / "adapter_model.safetensors"),
    )
    assert resumed.keys() == straight.keys()
    for name in resumed:
        assert torch.allclose(resumed[name], straight[name], atol=1e-6), name
    assert any(straight[name].abs().max() > 0 for name in straight if "lora_B" in name)


def test_changed_settings_refuse_to_resume(tmp_path, tiny_dir, pairs_file, cli):
    config = write_config(tmp_path / "train.yaml", tiny_dir, pairs_file, tmp_path / "adapter")
    work = tmp_path / "adapter.work"
    result = cli("train", "--config", config, "keep_checkpoints=true", "max_steps=1")
    assert result.code == 0, result
    assert (work / "work_state.json").is_file()
    result = cli("train", "--config", config, "learning_rate=0.5", "max_steps=1")
    assert result.code == 2 and "learning_rate" in result.err and str(work) in result.err
    assert result.err.count("\n") == 1
