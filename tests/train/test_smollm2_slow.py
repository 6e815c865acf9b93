"""SmolLM2-135M on ~32 curated pairs: on held-out pairs the adapter at +1 moves the preference margin toward cho
and at -1 toward rej."""

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The curated SmolLM2 fixture of the pairs stage (tests/data/smollm2_pairs.jsonl); WSTEER_TRAIN_PAIRS overrides it.
PAIRS = Path(os.environ.get("WSTEER_TRAIN_PAIRS", REPO_ROOT / "tests/data/smollm2_pairs.jsonl"))


@pytest.mark.slow
def test_smollm2_heldout_margin_moves_toward_cho_at_plus_and_rej_at_minus(tmp_path):
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
    held = result.metrics["heldout"]
    assert held["n"] >= 6
    assert held["shift_plus"] > 0, held
    assert held["shift_minus"] < 0, held
    # most held-out pairs move, not one outlier
    moved = sum(p > b for p, b in zip(held["per_pair_plus"], held["per_pair_base"]))
    assert moved > held["n"] / 2, held
    steering = json.loads((tmp_path / "adapter" / "steering.json").read_text())
    assert steering["base_model"] == "smollm2-135m" and steering["metrics"]["heldout"]["shift_plus"] > 0
