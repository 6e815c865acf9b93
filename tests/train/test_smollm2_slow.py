"""SmolLM2-135M on 32 curated honest/dishonest pairs: the real model learns the training preferences, and on
held-out prompts the two poles separate (+1 ranks cho over rej more than -1 does).

A held-out shift at each pole on its own is too small to assert here: with 24 training pairs and 2 epochs it was
+0.007 / +0.005 in one run; the demo (60 pairs, 3 epochs) measures +0.021 / -0.011 (README, Results)."""

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The curated SmolLM2 fixture of the pairs stage (tests/data/smollm2_pairs.jsonl); WSTEER_TRAIN_PAIRS overrides it.
PAIRS = Path(os.environ.get("WSTEER_TRAIN_PAIRS", REPO_ROOT / "tests/data/smollm2_pairs.jsonl"))


@pytest.mark.slow
def test_smollm2_learns_its_training_pairs_and_the_poles_separate_on_heldout_pairs(tmp_path):
    from train.config import TrainConfig
    from train.run import train_adapter
    from wsteer.config import load_config

    if not PAIRS.is_file():
        pytest.skip(f"{PAIRS} (the curated SmolLM2 pairs fixture of the pairs stage) is not in this checkout")
    lines = PAIRS.read_text().splitlines()[:32]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    cfg = load_config(
        TrainConfig,
        None,
        [f"data={data}", f"output_dir={tmp_path / 'adapter'}", "epochs=2", "heldout_fraction=0.25", "progress=false"],
    )
    result = train_adapter(cfg)
    final = result.metrics["epochs"][-1]
    assert final["rewards/accuracies"] > 0.8 and final["rewards/margins"] > 0, final
    held = result.metrics["heldout"]
    assert held["n"] >= 6
    assert held["margin_plus"] > held["margin_minus"], held
    steering = json.loads((tmp_path / "adapter" / "steering.json").read_text())
    assert steering["base_model"] == "smollm2-135m" and "shift_plus" in steering["metrics"]["heldout"]
