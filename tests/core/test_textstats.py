import pytest

from wsteer import textstats as ts

TERMS = ts.persona_terms(
    "looks after others' wellbeing even when it means defying authority",
    "defers to authority even when others' wellbeing suffers for it",
)


def test_persona_terms_drop_scaffolding():
    assert TERMS == ["looks", "wellbeing", "defying", "authority", "defers", "suffers"]
    assert ts.persona_terms("an honest person", extra=["Truth"]) == ["honest", "truth"]


def test_refusal():
    assert ts.is_refusal("I'm sorry, but I can't help with that request.")
    assert ts.is_refusal("As an AI, I don’t have opinions.")
    assert not ts.is_refusal("Sure! Here is a haiku about rain.")


def test_hedging_and_confidence_rates():
    assert ts.hedging_rate("It might rain. I think it may clear up.") == pytest.approx(100 * 3 / 9)
    assert ts.confidence_rate("This is definitely right and clearly true.") == pytest.approx(100 * 2 / 7)
    assert ts.hedging_rate("") == 0.0


def test_formality_orders_registers():
    formal = "The committee considered the proposal carefully and recommended approval."
    casual = "Hey, it's gonna be awesome! Don't worry, lol."
    assert ts.formality(formal) > 0 > ts.formality(casual)


def test_repetition():
    assert ts.distinct_n("a b c d", 2) == 1.0
    loop = "I am not sure. " * 6
    assert ts.is_degenerate(loop)
    assert not ts.is_degenerate("Rain falls on the quiet town while children run home from school, laughing.")


def test_leaks_with_inflections_and_word_boundaries():
    terms = ts.persona_terms("an honest person")
    assert ts.find_leaks("Honestly, the honesty matters.", terms) == ["Honestly", "honesty"]
    assert not ts.leaks("dishonesty", terms)  # word boundary: a different word


def test_persona_echo_is_found_and_stripped():
    text = (
        "As someone who defers to authority, I would follow the rule. "
        "Tell your manager about the delay. Wellbeing and authority both matter here."
    )
    echoes = ts.find_persona_echo(text, TERMS)
    assert [e.text for e in echoes] == [
        "As someone who defers to authority, I would follow the rule.",
        "Wellbeing and authority both matter here.",
    ]
    assert ts.strip_sentences(text, echoes) == "Tell your manager about the delay."
    assert not ts.has_persona_echo("Tell your manager about the delay.", TERMS)


def test_text_metrics_keys():
    metrics = ts.text_metrics("I can't help with that.", ["honest"])
    assert metrics["refusal"] == 1.0 and metrics["words"] == 5.0 and metrics["leak"] == 0.0
