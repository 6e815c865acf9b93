"""Task-prompt suites: the built-in suite, user files (JSONL, CSV, local HF datasets) and the stable split."""

import json
from collections import Counter

import pytest

from wsteer.errors import DataError
from wsteer.prompts import TaskPrompt, heldout_ids, load_prompts, select_prompts, split_prompts

DOMAINS = {"coding", "writing", "advice", "factual", "moral", "agentic", "support"}


def test_builtin_suite_covers_every_domain():
    prompts = load_prompts("tasks")
    assert len(prompts) >= 150
    counts = Counter(p.domain for p in prompts)
    assert set(counts) == DOMAINS and min(counts.values()) >= 20
    assert len({p.prompt for p in prompts}) == len(prompts)  # no duplicated prompt text


def test_split_is_stratified_disjoint_and_stable():
    prompts = load_prompts("tasks")
    train, held = split_prompts(prompts, "train", 0.2), split_prompts(prompts, "heldout", 0.2)
    assert {p.id for p in train}.isdisjoint({p.id for p in held})
    assert len(train) + len(held) == len(prompts)
    per_domain = Counter(p.domain for p in prompts)
    held_per_domain = Counter(p.domain for p in held)
    assert held_per_domain == {d: round(0.2 * n) for d, n in per_domain.items()}
    # order-independent: shuffling the file does not move prompts across the split
    assert heldout_ids(list(reversed(prompts)), 0.2) == {p.id for p in held}


def test_adding_a_prompt_moves_at_most_one_other():
    prompts = load_prompts("tasks")
    before = heldout_ids(prompts, 0.2)
    after = heldout_ids(prompts + [TaskPrompt("coding-new", "Write a quine.", "coding")], 0.2)
    old_ids = {p.id for p in prompts}
    assert len((before ^ after) & old_ids) <= 1


def test_jsonl_and_csv_prompts(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "prompt": "Hi there", "domain": "chat"}\n{"prompt": "No id here"}\n')
    loaded = load_prompts(jsonl)
    assert loaded[0] == TaskPrompt("a", "Hi there", "chat")
    assert loaded[1].id.startswith("p-") and loaded[1].domain == "general"
    csv_file = tmp_path / "p.csv"
    csv_file.write_text('question,topic\n"Why, though?",misc\nWhat now?,misc\n')
    rows = load_prompts(csv_file, prompt_field="question", domain_field="topic")
    assert [(p.prompt, p.domain) for p in rows] == [("Why, though?", "misc"), ("What now?", "misc")]


def test_local_hf_dataset_directory_and_parquet(tmp_path):
    import datasets

    data = datasets.Dataset.from_dict({"instruction": ["Plan a picnic.", "Fix my bike."], "id": ["x1", "x2"]})
    datasets.DatasetDict({"test": data}).save_to_disk(str(tmp_path / "dd"))
    loaded = load_prompts(tmp_path / "dd", prompt_field="instruction", dataset_split="test")
    assert [p.id for p in loaded] == ["x1", "x2"] and loaded[0].prompt == "Plan a picnic."
    with pytest.raises(DataError, match=r"splits \['test'\]"):
        load_prompts(tmp_path / "dd", prompt_field="instruction")  # no 'train' split and none chosen
    data.to_parquet(str(tmp_path / "p.parquet"))
    assert [p.prompt for p in load_prompts(tmp_path / "p.parquet", prompt_field="instruction")] == [
        "Plan a picnic.",
        "Fix my bike.",
    ]


@pytest.mark.parametrize(
    "text, fragment, line",
    [
        ('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', "duplicate prompt id 'a'", 2),
        ('{"id": "a", "text": "x"}\n', "no 'prompt' text (columns: id, text)", 1),
        ('{"id": "a", "prompt": "x"}\n[1, 2]\n', "must be a JSON object", 2),
    ],
)
def test_bad_prompt_files_name_file_and_line(tmp_path, text, fragment, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_prompts(path)
    assert fragment in str(err.value) and f"{path}:{line}" in str(err.value)


def test_select_by_domain_and_limit_round_robin():
    prompts = load_prompts("tasks")
    picked = select_prompts(prompts, limit=14)
    assert len(picked) == 14 and Counter(p.domain for p in picked) == {d: 2 for d in DOMAINS}
    assert {p.domain for p in select_prompts(prompts, domains=["moral"])} == {"moral"}
    with pytest.raises(DataError, match="no prompts in domain"):
        select_prompts(prompts, domains=["poetry"])


def test_suite_file_is_plain_jsonl_with_required_keys():
    from wsteer.prompts import suite_path

    for line in suite_path("tasks").read_text().splitlines():
        assert set(json.loads(line)) == {"id", "prompt", "domain"}


def test_instruction_is_appended_to_every_prompt_and_keeps_the_split():
    from wsteer.prompts import PromptSource, resolve_prompts

    bare = resolve_prompts(PromptSource(split="heldout", limit=5))
    told = resolve_prompts(PromptSource(split="heldout", limit=5, instruction="  Answer in one sentence. "))
    assert [p.id for p in told] == [p.id for p in bare] and [p.domain for p in told] == [p.domain for p in bare]
    assert [p.prompt for p in told] == [f"{p.prompt} Answer in one sentence." for p in bare]
    assert resolve_prompts(PromptSource(split="heldout", limit=5, instruction=" ")) == bare
