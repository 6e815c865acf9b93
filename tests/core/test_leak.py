"""The persona-vocabulary processor on a tiny model whose logits are rigged toward persona words."""

import pytest
import torch

from wsteer.chat import build_messages
from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
from wsteer.leak import PersonaVocabulary, PersonaVocabularyProcessor, spellings
from wsteer.textstats import find_leaks


def token_id(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens"
    return ids[0]


def rig(model, tokenizer, start, after=None):
    """Make ``model`` a bigram machine: next-token logits are ``start`` (a base preference, everything else -5)
    plus, after token P, the scores ``after[P]``. Returns the hook handle."""
    base = torch.full((model.config.vocab_size,), -5.0)
    for text, score in start.items():
        base[token_id(tokenizer, text)] = score
    table = {
        token_id(tokenizer, p): {token_id(tokenizer, n): s for n, s in nexts.items()}
        for p, nexts in (after or {}).items()
    }

    def hook(module, args, kwargs, output):
        ids = kwargs.get("input_ids")
        ids = ids if ids is not None else args[0]
        rows = []
        for last in ids[:, -1].tolist():
            logits = base.clone()
            for token, score in table.get(last, {}).items():
                logits[token] = score
            rows.append(logits)
        rigged = torch.stack(rows)[:, None, :]  # [B, 1, V]
        output.logits = rigged.expand(-1, output.logits.shape[1], -1).contiguous()
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def generate(model, tokenizer, n_rows, processor=None, max_new_tokens=12):
    requests = [GenerationRequest(build_messages(f"Tell me something, row {i}.")) for i in range(n_rows)]
    hook = (lambda batch: [processor]) if processor is not None else None
    out = HFBackend(model, tokenizer, batch_size=n_rows).generate(
        requests, SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0), logits_processors=hook
    )
    return [g.text for g in out]


# single-token spellings, and first tokens of multi-token ones (" Hon"+"est", "hon"+"est", " H"+"ON"+"EST")
PERSONA_WORDS = {" honest": 10.0, " honestly": 9.8, " dishonest": 9.7, " Hon": 9.6, "hon": 9.5, " H": 9.4, " cake": 2.0}
CONTINUATIONS = {" Hon": {"est": 12.0}, "hon": {"est": 12.0, "esty": 11.0}, " H": {"ON": 12.0}, "ON": {"EST": 12.0}}


def test_ban_keeps_rigged_persona_words_out_of_greedy_output(tiny):
    model, tokenizer = tiny
    rig(model, tokenizer, PERSONA_WORDS, after=CONTINUATIONS)
    terms = ["honest", "dishonest"]
    unbanned = generate(model, tokenizer, 2)
    assert all(find_leaks(text, terms) for text in unbanned)  # the rig works: persona words win without the ban
    processor = PersonaVocabularyProcessor(tokenizer, [terms, terms], mode="ban")
    for text in generate(model, tokenizer, 2, processor, max_new_tokens=24):
        assert text and find_leaks(text, terms) == [], text


def test_multi_token_word_is_blocked_only_after_its_prefix(tiny):
    model, tokenizer = tiny
    # "honest" without a leading space is hon + est; after "hon" the rig prefers "est", then "ey" (honey)
    rig(
        model,
        tokenizer,
        {"hon": 10.0},
        after={"hon": {"est": 10.0, "ey": 5.0, "hon": -5.0}, "est": {".": 10.0}, "ey": {".": 10.0}},
    )
    assert "honest.honest" in generate(model, tokenizer, 1)[0]
    processor = PersonaVocabularyProcessor(tokenizer, [["honest"]])
    text = generate(model, tokenizer, 1, processor)[0]
    assert text.startswith("honey.honey.")  # "hon" itself stays allowed; only its continuation "est" is blocked
    assert find_leaks(text, ["honest"]) == []


def test_word_start_spellings_do_not_block_inside_other_words(tiny):
    model, tokenizer = tiny
    # "dis" + "hon" + "est" = "dishonest" does not contain the *word* honest (the string detector agrees)
    rig(model, tokenizer, {"dis": 10.0}, after={"dis": {"hon": 12.0}, "hon": {"est": 12.0}, "est": {" ": 12.0}})
    processor = PersonaVocabularyProcessor(tokenizer, [["honest"]])
    text = generate(model, tokenizer, 1, processor, max_new_tokens=3)[0]
    assert text == "dishonest" and find_leaks(text, ["honest"]) == []


def test_personas_differ_per_row(tiny):
    model, tokenizer = tiny
    rig(model, tokenizer, {" honest": 10.0, " brave": 9.0, " cake": 1.0})
    processor = PersonaVocabularyProcessor.for_personas(tokenizer, [("honest", "dishonest"), ("brave", "cowardly")])
    honest_row, brave_row = generate(model, tokenizer, 2, processor)
    assert "brave" in honest_row and not find_leaks(honest_row, ["honest", "dishonest"])
    assert "honest" in brave_row and not find_leaks(brave_row, ["brave", "cowardly"])


@pytest.mark.parametrize("penalty, expected", [(5.0, "brave"), (0.5, "honest")])
def test_penalty_mode_lowers_instead_of_banning(tiny, penalty, expected):
    model, tokenizer = tiny
    rig(model, tokenizer, {" honest": 10.0, " brave": 9.0})
    processor = PersonaVocabularyProcessor(tokenizer, [["honest"]], mode="penalty", penalty=penalty)
    text = generate(model, tokenizer, 1, processor, max_new_tokens=4)[0]
    assert text.split() == [expected] * 4


def test_vocabulary_covers_case_space_and_inflections(tokenizer):
    vocab = PersonaVocabulary.build(tokenizer, ["honest"])
    always = set(tokenizer.convert_ids_to_tokens(vocab.always))
    assert {"Ġhonest", "Ġhonestly", "Ġhonesty"} <= always
    continuations = {
        (tuple(tokenizer.convert_ids_to_tokens(list(prefix))), tokenizer.convert_ids_to_tokens(last))
        for entries in vocab.continuations.values()
        for prefix, last, _ in entries
    }
    assert (("hon",), "est") in continuations and (("ĠHon",), "est") in continuations
    assert {"Honest", " HONEST", " honestly"} <= set(spellings("honest"))


def test_processor_rejects_a_batch_of_the_wrong_size(tokenizer):
    processor = PersonaVocabularyProcessor(tokenizer, [["honest"]])
    with pytest.raises(ValueError, match="built for 1 rows"):
        processor(torch.zeros((2, 3), dtype=torch.long), torch.zeros((2, len(tokenizer))))
