"""`wsteer eval sweep` killed mid-run (SIGKILL, and SIGINT = Ctrl-C), then rerun: no generation lost or repeated
in its cache, and the final outputs equal an uninterrupted run's.

Generation and training have the same test beside their own (tests/pairs/test_generate.py and
tests/train/test_resume.py, both parametrised over SIGKILL and SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from adapter_helpers import load_checkpoint, make_adapter, write_steering

from wsteer.testing import save_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_kill")
    base = save_tiny_model(root / "tiny", seed=0)
    make_adapter(load_checkpoint(base), root / "adapter", seed=0)
    write_steering(root / "adapter", base)
    return root / "adapter"


@pytest.fixture(scope="module")
def straight(adapter, tmp_path_factory):
    """The uninterrupted sweep both kill variants must reproduce (run once for the module)."""
    from wsteer.cli import main

    root = tmp_path_factory.mktemp("sweep_straight")
    assert main(["eval", "sweep", "--config", str(sweep_config(root / "sweep.yaml", adapter, root / "out"))]) == 0
    return root / "out"


def sweep_config(path: Path, adapter: Path, out_dir: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "adapter": str(adapter),
                "out_dir": str(out_dir),
                "alphas": [-1.0, 0.0, 1.0],
                "prompts": {"limit": 4},
                "sampling": {"max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0},
                "batch_size": 2,
                "leak_check_prompts": 1,
            }
        )
    )
    return path


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("seconds", "wall_s", "created")}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_sweep_killed_then_rerun_loses_and_repeats_nothing_and_matches_an_uninterrupted_run(
    tmp_path, adapter, straight, cli, monkeypatch, sig
):
    out = tmp_path / "killed"
    config = sweep_config(tmp_path / "sweep.yaml", adapter, out)
    cache = out / "cache" / "generations.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wsteer", "eval", "sweep", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            if cache.exists() and cache.read_bytes().count(b"\n") >= 4:  # one chunk (2 batches of 2) is cached
                break
            time.sleep(0.01)
        assert process.poll() is None, f"finished or failed before the kill: {process.stderr.read().decode()[-2000:]}"
        process.send_signal(sig)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read().decode()
    if sig == signal.SIGINT:
        assert code == 130, stderr[-2000:]
        assert "Traceback" not in stderr
        assert stderr.rstrip().splitlines()[-1].startswith("wsteer: interrupted"), stderr[-2000:]
    assert not (out / "summary.json").exists(), "the kill came after the sweep finished"
    cached_before = cache.read_bytes()
    finished = cached_before[: cached_before.rfind(b"\n") + 1]
    n_finished = finished.count(b"\n")

    monkeypatch.chdir(tmp_path)
    rerun = cli("eval", "sweep", "--config", config)
    assert rerun.code == 0, rerun
    keys = [json.loads(line)["key"] for line in cache.read_bytes().splitlines()]
    assert cache.read_bytes().startswith(finished), "finished cache lines were rewritten"
    assert len(keys) == len(set(keys)), "a generation was cached twice"
    assert f"{n_finished} from cache" in rerun.out

    assert (out / "generations.jsonl").read_bytes() == (straight / "generations.jsonl").read_bytes()
    resumed_summary = json.loads((out / "summary.json").read_text())
    straight_summary = json.loads((straight / "summary.json").read_text())
    assert without_timing(resumed_summary) == without_timing(straight_summary)
    assert sorted(keys) == sorted(json.loads(line)["key"] for line in (straight / "cache/generations.jsonl").open())
