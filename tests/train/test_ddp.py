"""Two-process DDP on CPU (gloo), launched with torchrun: each rank trains on its own shard, the adapters stay
identical, and only rank 0 writes the output directory."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)

REPO_ROOT = Path(__file__).resolve().parents[2]

RANK_DRIVER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import Trainer

    import wsteer.train.run as run
    from wsteer.train.config import TrainConfig
    from wsteer.config import load_config

    rank, report = int(os.environ["RANK"]), Path(sys.argv[2])
    seen, writes = [], []
    training_step = Trainer.training_step
    def recording_step(self, model, inputs, *args, **kwargs):  # the chosen rows this rank trains on
        chosen_ids, chosen_mask = inputs["input_ids"].chunk(2)[0], inputs["attention_mask"].chunk(2)[0]
        seen.extend(ids[mask.bool()].tolist() for ids, mask in zip(chosen_ids, chosen_mask))
        return training_step(self, model, inputs, *args, **kwargs)
    Trainer.training_step = recording_step
    write_outputs = run.write_outputs
    def recording_write(*args, **kwargs):
        writes.append(rank)
        return write_outputs(*args, **kwargs)
    run.write_outputs = recording_write

    result = run.train_adapter(load_config(TrainConfig, sys.argv[1]))
    state = {k: v.detach().float().contiguous() for k, v in get_peft_model_state_dict(result.model).items()}
    save_file(state, str(report / f"adapter_rank{rank}.safetensors"))
    (report / f"rank{rank}.json").write_text(json.dumps({"seen": seen, "writes": writes}))
""")


def test_two_process_ddp_shards_data_syncs_adapters_and_writes_once(tmp_path, tiny_dir, pairs_file):
    out = tmp_path / "adapter"
    config = tmp_path / "train.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        data: {pairs_file}
        output_dir: {out}
        model: {{name: {tiny_dir}}}
        lora: {{r: 4, alpha: 8}}
        epochs: 1
        batch_size: 2
        heldout_fraction: 0.2
        learning_rate: 0.01
        progress: false
        """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    driver = tmp_path / "rank_driver.py"
    driver.write_text(RANK_DRIVER)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(driver),
            str(config),
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    seen = [{tuple(ids) for ids in rank["seen"]} for rank in ranks]
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 4  # 8 training pairs, 2 ranks, 1 epoch
    assert not seen[0] & seen[1], "both ranks trained on the same pair"
    assert len(seen[0] | seen[1]) == 8

    adapters = [load_file(tmp_path / f"adapter_rank{r}.safetensors") for r in (0, 1)]
    assert adapters[0].keys() == adapters[1].keys()
    for name in adapters[0]:
        assert torch.equal(adapters[0][name], adapters[1][name]), name
    assert any(t.abs().max() > 0 for name, t in adapters[0].items() if "lora_B" in name)

    assert ranks[0]["writes"] == [0] and ranks[1]["writes"] == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    saved = load_file(out / "adapter_model.safetensors")
    for name, tensor in saved.items():  # the written adapter is the synchronised one
        assert torch.equal(tensor.float(), adapters[0][name]), name
    assert not list(tmp_path.glob(".adapter*")) and not Path(f"{out}.work").exists()
