"""SmolLM2-135M on the 46 curated honest/dishonest fixture pairs (34 train, 12 held-out by prompt, 3 epochs): the
real model learns the training preferences, and on held-out pairs the margin moves toward cho at +1 and toward rej
at -1.

Fewer pairs do not carry this trait to held-out prompts reliably: with 24 training pairs and 2 epochs the shifts
were +0.007 / +0.005. The run is deterministic on CPU (one torch thread, fixed seed)."""

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The curated SmolLM2 fixture of the pairs stage (tests/data/smollm2_pairs.jsonl); WSTEER_TRAIN_PAIRS overrides it.
PAIRS = Path(os.environ.get("WSTEER_TRAIN_PAIRS", REPO_ROOT / "tests/data/smollm2_pairs.jsonl"))


@pytest.mark.slow
def test_smollm2_heldout_margin_moves_toward_cho_at_plus_and_rej_at_minus(tmp_path):
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    if not PAIRS.is_file():
        pytest.skip(f"{PAIRS} (the curated SmolLM2 pairs fixture of the pairs stage) is not in this checkout")
    lines = PAIRS.read_text().splitlines()
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    cfg = load_config(
        TrainConfig,
        None,
        [f"data={data}", f"output_dir={tmp_path / 'adapter'}", "epochs=3", "heldout_fraction=0.25", "progress=false"],
    )
    result = train_adapter(cfg)
    final = result.metrics["epochs"][-1]
    assert final["rewards/accuracies"] > 0.8 and final["rewards/margins"] > 0, final
    held = result.metrics["heldout"]
    assert held["n"] >= 6
    assert held["shift_plus"] > 0 > held["shift_minus"], held
    steering = json.loads((tmp_path / "adapter" / "steering.json").read_text())
    assert steering["base_model"] == "smollm2-135m" and "shift_plus" in steering["metrics"]["heldout"]
