"""Pairs -> TRL datasets: the prompt tokens TRL trains on are the ones the core renders for eval."""

import json

import pytest
from wsteer.train.data import completion_rows, load_pair_set, preference_rows, split_heldout, to_dataset

from wsteer.chat import build_messages, encode_completion, encode_prompt
from wsteer.errors import DataError

pytest_plugins = ["train_fixtures"]  # the shared fixtures (tiny model dir, pairs file, make_config)


def test_trl_prompt_tokens_equal_core_encode_prompt(make_config, tokenizer):
    """DPO and SFT tokenise our conversational rows to exactly wsteer.chat.encode_prompt + the answer."""
    from trl import SFTTrainer
    from wsteer.train.objectives import dpo_arguments, lora_config, make_trainer_classes, sft_arguments

    from wsteer.models import load_model

    cfg = make_config("precompute_ref=false")
    pairs = load_pair_set(cfg.data, None, 0.0, 0)
    preference_trainer, _ = make_trainer_classes()
    trainer = preference_trainer(
        model=load_model(cfg.model),
        args=dpo_arguments(cfg, "unused-dpo"),
        train_dataset=to_dataset(preference_rows(pairs.train)),
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
    )
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for record, row in zip(pairs.train, trainer.train_dataset):
        assert row["prompt_ids"] == encode_prompt(tokenizer, build_messages(record["prompt"]))
        for side, key in (("cho", "chosen_ids"), ("rej", "rejected_ids")):
            answer = encode_completion(tokenizer, record[side])
            assert row[key][: len(answer)] == answer
            assert end_of_turn in row[key][len(answer) :]  # the completion ends the assistant turn
    sft = SFTTrainer(
        model=load_model(cfg.model),
        args=sft_arguments(cfg, "unused-sft"),
        train_dataset=to_dataset(completion_rows(pairs.train, "cho")),
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
    )
    for record, row in zip(pairs.train, sft.train_dataset):
        prompt = encode_prompt(tokenizer, build_messages(record["prompt"]))
        assert row["input_ids"][: len(prompt)] == prompt
        labels = row["labels"]  # -100 = no loss: the loss is on the answer only
        assert set(labels[: len(prompt)]) == {-100} and all(t != -100 for t in labels[len(prompt) :])


def test_heldout_split_is_by_prompt_and_seeded(pairs_file):
    records = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    records += [{**r, "id": r["id"] + "b"} for r in records]  # a second pair for every prompt
    train, held = split_heldout(records, 0.2, seed=3)
    assert len(held) == 4 and len(train) == 16
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert split_heldout(records, 0.2, seed=3) == (train, held)
    assert split_heldout(records, 0.2, seed=4) != (train, held)


def test_mixed_personas_and_empty_answers_are_refused_with_file_and_line(tmp_path, pairs_file):
    lines = pairs_file.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["neg"] = "cynical"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(lines[:2] + [json.dumps(bad)]) + "\n")
    with pytest.raises(DataError, match=f"{mixed}:3.*one adapter steers one persona pair"):
        load_pair_set(mixed, None, 0.0, 0)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(lines[0] + "\n" + json.dumps({**json.loads(lines[1]), "rej": " "}) + "\n")
    with pytest.raises(DataError, match=f"{empty}:2.*'rej' is empty"):
        load_pair_set(empty, None, 0.0, 0)
