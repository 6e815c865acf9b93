"""The three objectives on a tiny model: what must change did, what must not did not, outputs load without wsteer."""

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from wsteer.train.run import train_adapter

from wsteer.lora import adapter_deltas, read_adapter, scaled_adapter
from wsteer.models import load_model
from wsteer.scoring import preference_margins

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)


def base_weights(model) -> dict:
    """Every non-LoRA weight of a (peft-wrapped or plain) model, by its plain transformers name."""
    out = {}
    for name, tensor in model.state_dict().items():
        if "lora_" in name:
            continue
        name = name.replace("base_model.model.", "").replace(".base_layer", "")
        out[name] = tensor.detach().clone()
    return out


def train_margins(result, records, alpha):
    with scaled_adapter(result.model, alpha):
        margins = preference_margins(
            result.model,
            result.tokenizer,
            [r["prompt"] for r in records],
            [r["cho"] for r in records],
            [r["rej"] for r in records],
        )
    return sum(margins) / len(margins)


def test_dpo_trains_the_adapter_only_and_writes_a_plain_peft_adapter(make_config, tiny_dir, batch_inputs):
    cfg = make_config("learning_rate=5e-3")
    before = base_weights(load_model(str(tiny_dir)))
    result = train_adapter(cfg)
    after = base_weights(result.model)
    assert before.keys() == after.keys()
    for name, weight in before.items():
        assert torch.equal(weight, after[name]), f"base weight {name} changed"
    adapter = read_adapter(cfg.output_dir)
    deltas = adapter_deltas(adapter)
    assert len(deltas) == 2 * 7  # 2 layers x all linear targets
    assert all(delta.abs().max() > 0 for delta in deltas.values()), "an adapted module did not train"
    # A plain peft adapter: loads with PeftModel.from_pretrained and reproduces the trained model.
    loaded = PeftModel.from_pretrained(load_model(str(tiny_dir)), cfg.output_dir).eval()
    result.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch_inputs).logits, result.model(**batch_inputs).logits, atol=1e-5)
    out = Path(cfg.output_dir)
    files = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "steering.json",
        "metrics.json",
        "config.yaml",
        "manifest.json",
    } <= files
    steering = json.loads((out / "steering.json").read_text())
    assert (steering["pos"], steering["neg"], steering["objective"]) == ("optimistic", "pessimistic", "dpo")
    assert steering["base_hash"] and steering["data_sha256"] and steering["versions"]["trl"]
    assert steering["train_config"]["learning_rate"] == 5e-3 and steering["calibrated_alpha"] is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"][0]["epoch"] == 1 and "rewards/margins" in metrics["epochs"][0]
    assert metrics["heldout"]["n"] == 2 and "shift_plus" in metrics["heldout"]
    assert not list(out.parent.glob(".adapter*")), "a temp directory was left behind"
    assert not out.with_name("adapter.work").exists(), "checkpoints are removed after success by default"


@pytest.fixture
def batch_inputs(tokenizer):
    tokenizer.padding_side = "left"
    return tokenizer(["Hello there, how are you?", "Tell me about the sea."], return_tensors="pt", padding=True)


def test_dpo_uses_the_adapter_disabled_model_as_reference(make_config, tokenizer):
    """No second copy of the weights: TRL's ref_model is None and the reference log-probs are the base model's."""
    from wsteer.train.data import load_pair_set, preference_rows, to_dataset
    from wsteer.train.objectives import dpo_arguments, lora_config, make_trainer_classes

    cfg = make_config()
    pairs = load_pair_set(cfg.data, None, 0.0, 0)
    preference_trainer, _ = make_trainer_classes()
    base = load_model(cfg.model)
    reference = preference_margins(
        base, tokenizer, [pairs.train[0]["prompt"]], [pairs.train[0]["cho"]], [pairs.train[0]["rej"]]
    )
    trainer = preference_trainer(
        model=base,
        args=dpo_arguments(cfg, "unused"),
        train_dataset=to_dataset(preference_rows(pairs.train)),
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
    )
    assert trainer.ref_model is None
    assert sum(p.numel() for p in trainer.model.parameters()) < 1.01 * sum(p.numel() for p in base.parameters())
    row = trainer.train_dataset[0]
    ref_margin = row["ref_chosen_logps"] / len(row["chosen_ids"]) - row["ref_rejected_logps"] / len(row["rejected_ids"])
    # TRL scores the answer plus the end-of-turn tokens; the core scores the answer text only, so compare loosely
    assert ref_margin == pytest.approx(reference[0], abs=0.5)
    with torch.no_grad(), trainer.model.disable_adapter():
        assert torch.isfinite(torch.tensor(row["ref_chosen_logps"]))


def test_bidirectional_moves_training_pairs_toward_cho_at_plus_and_rej_at_minus(make_config):
    cfg = make_config(
        "objective=bidirectional",
        "learning_rate=1e-2",
        "epochs=3",
        "heldout_fraction=0",
        "batch_size=5",
        "micro_batch_size=5",
    )
    result = train_adapter(cfg)
    records = [json.loads(line) for line in Path(cfg.data).read_text().splitlines()]
    base, plus, minus = (train_margins(result, records, a) for a in (0.0, 1.0, -1.0))
    assert plus > base + 0.05, (base, plus, minus)
    assert minus < base - 0.05, (base, plus, minus)
    epochs = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())["epochs"]
    assert epochs[-1]["rewards/accuracies_plus"] > 0.5 and epochs[-1]["rewards/accuracies_minus"] > 0.5


def test_mirrored_batch_swaps_sides_and_signs():
    from wsteer.train.objectives import mirrored_batch

    ids = torch.arange(8).view(4, 2)  # rows: cho0, cho1, rej0, rej1
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "completion_mask": torch.ones_like(ids),
        "ref_chosen_logps": torch.tensor([-1.0, -2.0]),
        "ref_rejected_logps": torch.tensor([-3.0, -4.0]),
    }
    mirrored, alphas = mirrored_batch(inputs)
    cho0, cho1, rej0, rej1 = ids
    expected = torch.stack([cho0, cho1, rej0, rej1, rej0, rej1, cho0, cho1])
    assert torch.equal(mirrored["input_ids"], expected)
    assert alphas == [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0]
    assert mirrored["ref_chosen_logps"].tolist() == [-1.0, -2.0, -3.0, -4.0]
    assert mirrored["ref_rejected_logps"].tolist() == [-3.0, -4.0, -1.0, -2.0]


def test_mirrored_batch_puts_each_pairs_magnitude_on_both_poles():
    from wsteer.train.objectives import mirrored_batch

    ids = torch.arange(8).view(4, 2)  # rows: cho0, cho1, rej0, rej1
    inputs = {key: ids for key in ("input_ids", "attention_mask", "completion_mask")}
    _, alphas = mirrored_batch(inputs, [0.5, 0.75])
    assert alphas == [0.5, 0.75, -0.5, -0.75, 0.5, 0.75, -0.5, -0.75]
    with pytest.raises(ValueError, match="3 pole magnitudes for a batch of 2"):
        mirrored_batch(inputs, [0.5, 0.75, 1.0])


def test_pole_scale_sampler_draws_in_its_range_and_repeats_with_its_seed():
    from wsteer.train.objectives import PoleScaleSampler

    draws = [PoleScaleSampler(0.5, 1.0, seed=3)(4) for _ in range(2)]
    assert draws[0] == draws[1] and len(set(draws[0])) == 4
    assert all(0.5 <= d < 1.0 for d in draws[0])
    assert PoleScaleSampler(0.5, 1.0, seed=4)(4) != draws[0]
    assert PoleScaleSampler(1.0, 1.0, seed=3)(3) == [1.0, 1.0, 1.0]


def test_pole_scales_train_the_adapter_at_the_scales_drawn(make_config, pairs_file):
    """Same seed and data: an adapter trained at ±0.5 separates the pairs further at ±0.5 than one trained at
    ±1 does (it had to reach the margins at half strength). An objective that ignored the drawn scales would
    train the same adapter twice."""
    records = [json.loads(line) for line in Path(pairs_file).read_text().splitlines()]
    margins = {}
    for scales in ([1.0, 1.0], [0.5, 0.5]):
        cfg = make_config(
            "objective=bidirectional",
            f"pole_scales={json.dumps(scales)}",
            "learning_rate=5e-2",
            "epochs=4",
            "heldout_fraction=0",
            f"output_dir={Path(make_config().output_dir).parent / str(scales[0])}",
        )
        result = train_adapter(cfg)
        base = train_margins(result, records, 0.0)
        margins[scales[0]] = {a: train_margins(result, records, a) - base for a in (0.5, -0.5)}
    assert margins[0.5][0.5] > 1.5 * margins[1.0][0.5] > 0, margins
    assert margins[0.5][-0.5] < 1.5 * margins[1.0][-0.5] < 0, margins


def test_pole_scales_are_checked():
    from wsteer.train.config import TrainConfig

    with pytest.raises(ValueError, match="0 < low <= high"):
        TrainConfig(objective="bidirectional", pole_scales=[1.0, 0.5])
    with pytest.raises(ValueError, match="applies to objective 'bidirectional' only"):
        TrainConfig(objective="dpo", pole_scales=[0.5, 1.0])


def test_token_kl_matches_full_logits_and_is_zero_at_the_base():
    from wsteer.train.objectives import token_kl_to_base

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    policy = torch.randn(3, 5, 8, requires_grad=True)
    base = torch.randn(3, 5, 8)
    mask = torch.rand(3, 5) > 0.3
    kl = token_kl_to_base(policy, base, head, mask, chunk_size=4)
    logp = torch.log_softmax(head(policy[mask]), -1)
    logq = torch.log_softmax(head(base[mask]), -1)
    expected = (logp.exp() * (logp - logq)).sum(-1).mean()
    assert torch.allclose(kl, expected, atol=1e-6)
    kl.backward()
    assert policy.grad is not None and policy.grad.abs().sum() > 0
    assert token_kl_to_base(base, base, head, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_bidirectional_kl_term_is_logged(make_config):
    cfg = make_config("objective=bidirectional", "kl_coef=0.5", "max_steps=1")
    result = train_adapter(cfg)
    epochs = result.metrics["epochs"]
    assert epochs[0]["kl_to_base"] >= 0.0


def kl_to_base_after_training(result, records, alpha: float) -> float:
    """Mean token KL(adapter at α ‖ base) over the completion tokens of every cho and rej answer."""
    from wsteer.chat import build_messages, encode_completion
    from wsteer.scoring import completion_log_softmax, token_kl

    conversations = [build_messages(r["prompt"]) for r in records] * 2
    completions = [encode_completion(result.tokenizer, r[k]) for k in ("cho", "rej") for r in records]
    model = result.model.eval()
    with torch.no_grad():
        steered = completion_log_softmax(
            model, result.tokenizer, conversations, completions, scaled_adapter(model, alpha)
        )
        base = completion_log_softmax(model, result.tokenizer, conversations, completions, scaled_adapter(model, 0.0))
    kls = torch.cat([token_kl(s, b) for s, b in zip(steered, base)])  # [all completion tokens]
    return kls.mean().item()


@pytest.mark.parametrize("objective", ["dpo", "bidirectional", "contrastive_sft"])
def test_the_kl_term_keeps_the_adapter_closer_to_the_base(make_config, pairs_file, objective):
    """Same seed, same data: kl_coef > 0 ends with a lower KL to the base than kl_coef = 0 (at +1, and at −1 for
    the objective that trains both poles), and the trainer logged the term."""
    records = [json.loads(line) for line in Path(pairs_file).read_text().splitlines()]
    kls = {}
    for coef in (0.0, 10.0):
        cfg = make_config(
            f"objective={objective}",
            f"kl_coef={coef}",
            "learning_rate=2e-2",
            "epochs=2",
            "heldout_fraction=0",
            f"output_dir={Path(make_config().output_dir).parent / str(coef)}",
        )
        result = train_adapter(cfg)
        kls[coef] = {a: kl_to_base_after_training(result, records, a) for a in (1.0, -1.0)}
        epochs = result.metrics["epochs"]
        epochs = [*epochs["pos"], *epochs["neg"]] if objective == "contrastive_sft" else epochs
        logged = [e.get("kl_to_base") for e in epochs]
        assert (coef > 0) == any(v is not None for v in logged), logged
    assert kls[0.0][1.0] > 0.005, "the adapter without the KL term must have moved for the comparison to mean much"
    assert kls[10.0][1.0] < 0.8 * kls[0.0][1.0], kls
    if objective == "bidirectional":
        assert kls[10.0][-1.0] < 0.8 * kls[0.0][-1.0], kls


def side_nll(result, records, side: str, alpha: float) -> float:
    """Mean token NLL of every record's ``side`` answer after its bare prompt, with the adapter at α."""
    from wsteer.chat import build_messages
    from wsteer.scoring import completion_logprobs

    model = result.model.eval()
    with torch.no_grad(), scaled_adapter(model, alpha):
        logprobs = completion_logprobs(
            model, result.tokenizer, [build_messages(r["prompt"]) for r in records], [r[side] for r in records]
        )
    tokens = [v for row in logprobs for v in row]
    return -sum(tokens) / len(tokens)


def test_the_sft_term_anchors_each_bidirectional_pole_to_the_side_it_prefers(make_config, pairs_file):
    """TRL's loss_type [sigmoid, sft] under the bidirectional objective: the NLL is taken on the side each pole
    prefers (the mirrored rows at −1 carry rej as their chosen answer), so after training, same seed and data, the
    adapter at +1 writes cho and at −1 writes rej more likely than the sigmoid-only adapter does."""
    records = [json.loads(line) for line in Path(pairs_file).read_text().splitlines()]
    nll = {}
    for losses in (["sigmoid"], ["sigmoid", "sft"]):
        weights = [1.0, 5.0][: len(losses)]  # on the near-uniform tiny model the NLL needs weight to show
        cfg = make_config(
            "objective=bidirectional",
            f"loss_type={json.dumps(losses)}",
            f"loss_weights={json.dumps(weights)}",
            "learning_rate=5e-2",
            "epochs=3",
            "heldout_fraction=0",
            f"output_dir={Path(make_config().output_dir).parent / '_'.join(losses)}",
        )
        result = train_adapter(cfg)
        base = {side: side_nll(result, records, side, 0.0) for side in ("cho", "rej")}
        # how much the adapter lowered each pole's preferred side's NLL from the base's
        nll[len(losses)] = {
            "cho@+1": base["cho"] - side_nll(result, records, "cho", 1.0),
            "rej@-1": base["rej"] - side_nll(result, records, "rej", -1.0),
        }
    assert nll[2]["cho@+1"] > 1.5 * nll[1]["cho@+1"] > 0, nll
    assert nll[2]["rej@-1"] > 1.5 * nll[1]["rej@-1"] > 0, nll


def test_contrastive_sft_adapter_is_pos_minus_neg_per_layer(make_config):
    cfg = make_config("objective=contrastive_sft", "learning_rate=1e-2")
    train_adapter(cfg)
    combined = adapter_deltas(read_adapter(cfg.output_dir))
    pos = adapter_deltas(read_adapter(Path(cfg.output_dir) / "components" / "pos"))
    neg = adapter_deltas(read_adapter(Path(cfg.output_dir) / "components" / "neg"))
    assert combined.keys() == pos.keys() == neg.keys() and len(combined) == 14
    for name, delta in combined.items():
        assert pos[name].abs().max() > 0 and neg[name].abs().max() > 0
        assert not torch.allclose(pos[name], neg[name])
        assert torch.allclose(delta, pos[name] - neg[name], atol=1e-5), name


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_qlora_trains(make_config, tiny64_dir, bits):
    cfg = make_config(
        f"model.name={tiny64_dir}",
        f"model.quantization={bits}",
        "max_steps=3",
        "learning_rate=1e-2",
        "heldout_fraction=0",
    )
    result = train_adapter(cfg)
    assert getattr(result.model.get_base_model(), f"is_loaded_in_{bits}", False)
    deltas = adapter_deltas(read_adapter(cfg.output_dir))
    assert all(delta.abs().max() > 0 for delta in deltas.values())


def test_trl_loss_variants_pass_through(make_config):
    from wsteer.train.objectives import dpo_arguments

    args = dpo_arguments(make_config("loss_type=[ipo, sft]", "loss_weights=[1.0, 0.5]", "beta=0.3"), "unused")
    assert args.loss_type == ["ipo", "sft"] and args.loss_weights == [1.0, 0.5] and args.beta == 0.3
    from wsteer.train.objectives import native_bf16

    assert args.gradient_checkpointing is False and args.precompute_ref_log_probs
    assert args.bf16 is native_bf16()  # explicit either way: TRL's own default is bf16 on any hardware
    assert dpo_arguments(make_config("mixed_precision=fp32"), "unused").bf16 is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["kl_coef=0.1", "lora.init=pissa"], "kl_coef needs the adapter-disabled model"),
        (["objective=bidirectional", "lora.use_dora=true"], "DoRA"),
        (["objective=bidirectional", "lora.init=pissa"], "PiSSA"),
        (["lora.layers=5-2"], "FIRST-LAST"),
        (["batch_size=5", "micro_batch_size=2"], "multiple of micro_batch_size"),
    ],
)
def test_invalid_combinations_are_config_errors(make_config, overrides, message):
    from wsteer.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_config(*overrides)


def test_pissa_adapter_is_saved_as_a_plain_delta_against_the_original_base(make_config, tiny_dir, batch_inputs):
    """PiSSA rewrites the base to W - B0 A0 while training; the saved adapter must apply to the untouched base."""
    cfg = make_config("lora.init=pissa", "max_steps=2", "learning_rate=1e-2", "heldout_fraction=0")
    result = train_adapter(cfg)
    result.model.eval()
    with torch.no_grad():
        trained = result.model(**batch_inputs).logits
    base = load_model(str(tiny_dir))
    with torch.no_grad():
        base_logits = base(**batch_inputs).logits
    loaded = PeftModel.from_pretrained(base, cfg.output_dir).eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch_inputs).logits, trained, atol=1e-4)
        assert not torch.allclose(trained, base_logits, atol=1e-4)
        with scaled_adapter(loaded, 0.0):
            assert torch.equal(loaded(**batch_inputs).logits, base_logits)


def test_missing_tracker_is_a_one_line_error_before_loading(cli, make_config, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real_find_spec(name, *a),
    )
    cfg = make_config()
    result = cli(
        "train",
        f"data={cfg.data}",
        f"model.name={cfg.model.name}",
        "report_to=[tensorboard]",
        f"output_dir={cfg.output_dir}",
    )
    assert result.code == 2 and "report_to" in result.err and "pip install tensorboard" in result.err


def test_sharded_launch_settings(make_config, monkeypatch):
    from wsteer.train.run import check_launch

    from wsteer.errors import WsteerError

    cfg = make_config()
    assert check_launch(cfg) == cfg  # single process / DDP: unchanged
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    sharded = check_launch(cfg)
    assert sharded.precompute_ref is False and sharded.model.device_map == "cpu"
    with pytest.raises(WsteerError, match="contrastive_sft"):
        check_launch(make_config("objective=contrastive_sft"))


def test_pissa_reference_log_probs_are_the_base_models(make_config, tokenizer):
    """Disabling a PiSSA adapter would leave W - B0 A0; the precomputed reference must be the base model's."""
    from wsteer.train.data import load_pair_set, preference_rows, to_dataset
    from wsteer.train.objectives import dpo_arguments, lora_config, make_trainer_classes

    preference_trainer, _ = make_trainer_classes()
    references = {}
    for init in ("default", "pissa"):
        cfg = make_config(f"lora.init={init}", "mixed_precision=fp32")  # compare without bf16 rounding
        pairs = load_pair_set(cfg.data, None, 0.0, 0)
        trainer = preference_trainer(
            model=load_model(cfg.model),
            args=dpo_arguments(cfg, f"unused-{init}"),
            train_dataset=to_dataset(preference_rows(pairs.train[:4])),
            processing_class=tokenizer,
            peft_config=lora_config(cfg),
            reference_is_initial_adapter=cfg.lora.is_pissa,
        )
        references[init] = torch.tensor(trainer.train_dataset["ref_chosen_logps"])
        if init == "pissa":
            with torch.no_grad(), trainer.model.disable_adapter():  # what TRL's own path would have used
                disabled = trainer.compute_ref_log_probs(
                    trainer.model, trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
                )[0]
    assert torch.allclose(references["pissa"], references["default"], atol=1e-3)
    assert not torch.allclose(disabled, references["default"], atol=1e-2)
