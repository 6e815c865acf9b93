"""Standard data in: TRL's preference format (plain and conversational) and datasets directories train without
conversion, and train exactly what the same pairs in wsteer's own format train; the `trl:` section reaches TRL."""

import json

import pytest
import torch
from transformers import TrainerCallback
from wsteer.train.data import load_pair_set, preference_rows, to_dataset
from wsteer.train.run import train_adapter

from wsteer.chat import encode_prompt
from wsteer.config import load_config
from wsteer.errors import ConfigError, DataError
from wsteer.lora import read_adapter
from wsteer.pair_sources import read_pair_source
from wsteer.records import read_steering_info

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)

TWO_STEPS = ("max_steps=2", "batch_size=2", "heldout_fraction=0", "learning_rate=5e-3")


def wsteer_records(pairs_file) -> list[dict]:
    return [json.loads(line) for line in pairs_file.read_text().splitlines()]


def trl_plain(records: list[dict]) -> list[dict]:
    return [{"prompt": r["prompt"], "chosen": r["cho"], "rejected": r["rej"]} for r in records]


def trl_conversational(records: list[dict]) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["cho"]}],
            "rejected": [{"role": "assistant", "content": r["rej"]}],
        }
        for r in records
    ]


def trl_implicit(records: list[dict]) -> list[dict]:
    """TRL's implicit-prompt conversational rows: chosen/rejected repeat the user turn."""
    return [
        {
            "chosen": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["cho"]}],
            "rejected": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["rej"]}],
        }
        for r in records
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def save_dataset(path, rows, split: str | None = None):
    from datasets import Dataset, DatasetDict

    dataset = Dataset.from_list(rows)
    (DatasetDict({split: dataset}) if split else dataset).save_to_disk(str(path))
    return path


class ArgsSpy(TrainerCallback):
    """Keeps the TrainingArguments the trainer actually ran with."""

    def __init__(self):
        self.args = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.args.append(args)


def adapter_tensors(path) -> dict:
    adapter = read_adapter(path)
    return {name: tensor.clone() for name, tensor in adapter.tensors.items()}


@pytest.fixture(scope="module")
def reference_adapter(tiny_dir, pairs_file, tmp_path_factory):
    """The adapter trained from the wsteer-format pairs (the reference path)."""
    from wsteer.train.config import TrainConfig

    out = tmp_path_factory.mktemp("reference") / "adapter"
    overrides = [f"data={pairs_file}", f"model.name={tiny_dir}", f"output_dir={out}", "progress=false"]
    overrides += ["lora.r=4", "lora.alpha=8", "num_threads=1", *TWO_STEPS]
    train_adapter(load_config(TrainConfig, None, overrides))
    return adapter_tensors(out)


def make_source(kind: str, records: list[dict], tmp_path):
    if kind == "trl-plain":
        return write_jsonl(tmp_path / "trl.jsonl", trl_plain(records))
    if kind == "trl-conversational":
        return write_jsonl(tmp_path / "trl_chat.jsonl", trl_conversational(records))
    if kind == "trl-implicit":
        return write_jsonl(tmp_path / "trl_implicit.jsonl", trl_implicit(records))
    if kind == "save_to_disk":
        return save_dataset(tmp_path / "dataset", trl_conversational(records))
    if kind == "save_to_disk-dict":
        return save_dataset(tmp_path / "dataset_dict", trl_plain(records), split="train")
    if kind == "data-folder":  # what load_dataset does with a hub id, offline: a local folder of data files
        folder = tmp_path / "folder"
        folder.mkdir()
        write_jsonl(folder / "train.jsonl", trl_plain(records))
        return folder
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["trl-plain", "trl-conversational", "trl-implicit", "save_to_disk", "save_to_disk-dict", "data-folder"]
)
def test_standard_formats_train_the_same_adapter_as_wsteer_pairs(
    kind, make_config, pairs_file, tmp_path, reference_adapter
):
    records = wsteer_records(pairs_file)
    source = make_source(kind, records, tmp_path)
    cfg = make_config(f"data={source}", *TWO_STEPS)
    train_adapter(cfg)
    trained = adapter_tensors(cfg.output_dir)
    assert trained.keys() == reference_adapter.keys()
    for name, tensor in trained.items():
        assert torch.equal(tensor, reference_adapter[name]), f"{kind}: {name} differs from the wsteer-format run"
    info = read_steering_info(cfg.output_dir)
    assert info.pos is None and info.neg is None and info.template is None
    assert info.provenance["persona"].startswith("missing") and "pos=… neg=…" in info.provenance["persona"]
    assert info.data_sha256 and info.provenance["train_pairs"] == len(records)


def test_swapped_sides_train_a_different_adapter(make_config, pairs_file, tmp_path, reference_adapter):
    """The planted fault for the test above: the comparison does notice when the data differs."""
    swapped = [{**r, "cho": r["rej"], "rej": r["cho"]} for r in wsteer_records(pairs_file)]
    cfg = make_config(f"data={write_jsonl(tmp_path / 'swapped.jsonl', trl_plain(swapped))}", *TWO_STEPS)
    train_adapter(cfg)
    trained = adapter_tensors(cfg.output_dir)
    assert any(not torch.equal(t, reference_adapter[name]) for name, t in trained.items())


def test_trl_section_reaches_the_trainer_and_pair_labels_reach_steering_json(make_config, pairs_file, tmp_path):
    source = write_jsonl(tmp_path / "trl.jsonl", trl_plain(wsteer_records(pairs_file)))
    cfg = make_config(
        f"data={source}",
        *TWO_STEPS,
        "trl.adam_beta2=0.95",
        "trl.logging_first_step=true",
        "trl.optim=adamw_torch",
        "pair.pos=optimistic",
        "pair.neg=pessimistic",
        "pair.template=Be {persona}.",
    )
    spy = ArgsSpy()
    train_adapter(cfg, callbacks=[spy])
    (args,) = spy.args
    assert args.adam_beta2 == 0.95 and args.logging_first_step is True and args.optim == "adamw_torch"
    assert args.max_grad_norm == cfg.max_grad_norm  # wsteer's own keys still set theirs
    info = read_steering_info(cfg.output_dir)
    assert (info.pos, info.neg, info.template) == ("optimistic", "pessimistic", "Be {persona}.")
    assert info.provenance["persona"].startswith("from the pair.* keys")
    assert info.train_config["trl"] == {"adam_beta2": 0.95, "logging_first_step": True, "optim": "adamw_torch"}


def test_trl_section_default_leaves_trl_defaults_and_reaches_sft_too(make_config):
    from wsteer.train.objectives import dpo_arguments, sft_arguments

    assert dpo_arguments(make_config(), "unused").adam_beta2 == 0.999  # TRL's / transformers' default
    sft = sft_arguments(make_config("objective=contrastive_sft", "trl.shuffle_dataset=true"), "unused")
    assert sft.shuffle_dataset is True and sft.completion_only_loss is True
    assert sft_arguments(make_config("objective=contrastive_sft"), "unused").shuffle_dataset is False


def test_unknown_or_clashing_trl_keys_are_config_errors_naming_key_and_file(tmp_path):
    from wsteer.train.config import TrainConfig

    config = tmp_path / "train.yaml"
    config.write_text("data: x.jsonl\ntrl:\n  adam_beta3: 0.9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(TrainConfig, config)
    message = str(caught.value)
    assert "trl.adam_beta3" in message and str(config) in message and "unexpected keyword argument" in message
    with pytest.raises(ConfigError, match=r"trl\.max_grad_norm is set by wsteer from max_grad_norm"):
        load_config(TrainConfig, None, ["trl.max_grad_norm=0.5"])
    with pytest.raises(ConfigError, match=r"trl\.num_train_epochs.*set epochs instead"):
        load_config(TrainConfig, None, ["trl.num_train_epochs=2"])
    with pytest.raises(ConfigError, match=r"TRL refused the trl: section.*nonsense"):
        load_config(TrainConfig, None, ["trl.lr_scheduler_kwargs=[]", "trl.optim=nonsense"])
    assert load_config(TrainConfig, None, ["trl.push_to_hub=false"]).trl == {"push_to_hub": False}
    # The objective picks TRL's class: a DPO-only argument is unknown to contrastive_sft's SFTConfig.
    assert load_config(TrainConfig, None, ["trl.use_weighting=true"]).trl == {"use_weighting": True}
    with pytest.raises(ConfigError, match=r"trl\.use_weighting is not a SFTConfig argument"):
        load_config(TrainConfig, None, ["objective=contrastive_sft", "trl.use_weighting=true"])


def test_pair_labels_that_disagree_with_the_data_are_refused(pairs_file):
    from wsteer.train.config import PairLabels

    with pytest.raises(DataError, match=r"pair\.pos='cheerful' disagrees with the data's pos 'optimistic'"):
        load_pair_set(pairs_file, None, 0.0, 0, labels=PairLabels(pos="cheerful"))
    pairs = load_pair_set(pairs_file, None, 0.0, 0, labels=PairLabels(pos="optimistic"))
    assert (pairs.pos, pairs.neg, pairs.persona_source) == ("optimistic", "pessimistic", "data")
    from wsteer.train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"pair\.template must contain exactly one \{persona\} slot"):
        load_config(TrainConfig, None, ["pair.template=Be nice."])


def test_a_system_turn_and_several_turns_are_kept_and_trained_on(tmp_path, tokenizer):
    conversation = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "How is the weather?"},
    ]
    row = {
        "prompt": conversation,
        "chosen": [{"role": "assistant", "content": "Lovely!"}],
        "rejected": [{"role": "assistant", "content": "Awful."}],
    }
    source = write_jsonl(tmp_path / "chat.jsonl", [row, {**row, "id": "mine"}])
    first, second = read_pair_source(source)
    assert first["prompt"] == "How is the weather?" and first["messages"] == conversation
    assert (first["cho"], first["rej"], first["id"], second["id"]) == ("Lovely!", "Awful.", "chat.jsonl#0", "mine")
    dataset = to_dataset(preference_rows([first]))
    assert dataset[0]["prompt"] == conversation  # the whole conversation, system turn included
    ids = encode_prompt(tokenizer, conversation)
    assert tokenizer.decode(ids).count("You answer briefly.") == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"chosen": "a", "rejected": "b"}, "plain-text row needs a 'prompt'"),
        ({"question": "q", "answer": "a"}, "neither a wsteer pair.*keys: \\['answer', 'question'\\]"),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "user", "content": "x"}],
                "rejected": [],
            },
            "'chosen' must be one assistant message",
        ),
        ({"prompt": "q", "chosen": ["a"], "rejected": "b"}, "'chosen' must be a string like 'prompt'"),
        ({"id": "1", "prompt": "q", "cho": "a"}, "missing field 'rej'"),
    ],
)
def test_malformed_rows_are_refused_with_file_and_line(tmp_path, row, message):
    source = write_jsonl(tmp_path / "bad.jsonl", [trl_plain([{"prompt": "q", "cho": "a", "rej": "b"}])[0], row])
    with pytest.raises(DataError, match=f"{source}:2: .*{message}"):
        read_pair_source(source)


def test_missing_split_and_unknown_source_are_data_errors(tmp_path, pairs_file):
    saved = save_dataset(tmp_path / "dd", trl_plain(wsteer_records(pairs_file)), split="train")
    with pytest.raises(DataError, match=r"no split 'test' \(it has \['train'\]\)"):
        read_pair_source(saved, split="test")
    with pytest.raises(DataError, match=r"cannot open 'no-such-org/no-such-dataset'.*local Hugging Face cache"):
        read_pair_source("no-such-org/no-such-dataset")


def test_sharegpt_style_messages_are_converted_by_trl(tmp_path):
    row = {
        "prompt": [{"from": "user", "value": "How is the weather?"}],
        "chosen": [{"from": "assistant", "value": "Lovely!"}],
        "rejected": [{"from": "assistant", "value": "Awful."}],
    }
    (record,) = read_pair_source(write_jsonl(tmp_path / "sharegpt.jsonl", [row]))
    assert (record["prompt"], record["cho"], record["rej"]) == ("How is the weather?", "Lovely!", "Awful.")
    assert "messages" not in record  # a single user turn is the plain prompt


def test_a_plain_prompt_column_beside_conversational_answers_follows_trl(tmp_path):
    """As in HuggingFaceH4/ultrafeedback_binarized: a string 'prompt', full conversations in chosen/rejected and a
    'messages' column; TRL takes the prompt from the conversations, and 'messages' is not the prompt."""
    user = {"role": "user", "content": "How is the weather?"}
    row = {
        "prompt": "How is the weather?",
        "prompt_id": "abc",
        "chosen": [user, {"role": "assistant", "content": "Lovely!"}],
        "rejected": [user, {"role": "assistant", "content": "Awful."}],
        "messages": [user, {"role": "assistant", "content": "Lovely!"}],
        "score_chosen": 8.0,
    }
    (record,) = read_pair_source(write_jsonl(tmp_path / "h4.jsonl", [row]))
    assert (record["prompt"], record["cho"], record["rej"]) == ("How is the weather?", "Lovely!", "Awful.")
    assert "messages" not in record and record["score_chosen"] == 8.0
    assert preference_rows([record])[0]["prompt"] == [user]
