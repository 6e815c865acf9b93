"""An adapter trained on data without personas (TRL format, hub datasets): eval says which keys to supply."""

import pytest
from adapter_helpers import make_adapter, write_steering
from wsteer.eval.sweep import SweepConfig, _resolve_pair

from wsteer.errors import WsteerError
from wsteer.records import read_steering_info
from wsteer.testing import save_tiny_model


def test_sweep_names_the_persona_keys_when_steering_json_has_none(tmp_path):
    from wsteer.models import load_model

    base_dir = save_tiny_model(tmp_path / "base", seed=3)
    make_adapter(load_model(str(base_dir)), tmp_path / "adapter", seed=4)
    write_steering(tmp_path / "adapter", base_dir, pos=None, neg=None, template=None)
    info = read_steering_info(tmp_path / "adapter")  # null personas are a valid steering.json
    assert info.pos is None
    with pytest.raises(WsteerError) as caught:
        _resolve_pair(SweepConfig(adapter=str(tmp_path / "adapter")), info)
    message = str(caught.value)
    assert "steering.json names none" in message and "pos=… neg=… template=…" in message
    pair = _resolve_pair(
        SweepConfig(adapter=str(tmp_path / "adapter"), pos="calm", neg="angry", template="Be {persona}."), info
    )
    assert pair == {"pos": "calm", "neg": "angry", "template": "Be {persona}."}
