import pytest
from wsteer.pairs.personas import PersonaPair, Template, check_form, load_pairs, load_templates

from wsteer.errors import DataError, WsteerError


def test_yaml_and_jsonl_pairs(tmp_path):
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(
        "pairs:\n  - id: honest\n    pos: honest\n    neg: dishonest\n"
        "  - id: care\n    pos: looks after others' wellbeing even when it means defying authority\n"
        "    neg: defers to authority even when others' wellbeing suffers for it\n"
    )
    pairs = load_pairs(yaml_file)
    assert [p.id for p in pairs] == ["honest", "care"]
    assert pairs[0].form == "adjective" and pairs[1].form == "clause"
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "pos": "brave", "neg": "cowardly"}\n')
    assert load_pairs(jsonl)[0].neg == "cowardly"


@pytest.mark.parametrize(
    "text, fragment, line",
    [
        ("pairs:\n  - id: a\n    pos: x\n  - id: b\n    neg: y\n", "field 'neg' missing", 2),
        ("- id: a\n  pos: x\n  neg: y\n- id: a\n  pos: x\n  neg: y\n", "duplicate pair id 'a'", 4),
        ("- id: a\n  pos: x\n  neg: y\n  nots: z\n", "unknown field 'nots'", 1),
        ("- id: a\n  pos: ''\n  neg: y\n", "must be a non-empty string", 1),
    ],
)
def test_bad_pair_files_name_file_and_line(tmp_path, text, fragment, line):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_pairs(path)
    assert fragment in str(err.value) and f"{path}:{line}" in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("- id: t\n  text: Pretend you are honest.\n", "0 {persona} slots"),
        ("- id: t\n  text: '{persona} and {persona}'\n", "2 {persona} slots"),
        ("- id: t\n  text: 'Be {persona}.'\n  channel: feeling\n", "channel 'feeling'"),
    ],
)
def test_bad_templates(tmp_path, text, fragment):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        load_templates(path)


def test_form_mismatch_is_refused():
    clause_template = Template(id="who", text="Pretend you're someone who {persona}.")
    assert clause_template.form == "clause"
    with pytest.raises(WsteerError, match="takes a clause persona"):
        check_form(clause_template, PersonaPair(id="h", pos="honest", neg="dishonest"))
