"""Sentence-boundary trimming, language guess and AI boilerplate (textstats helpers used by curation)."""

import pytest

from wsteer import textstats as ts

CODE_ANSWER = "Sure. Here is code:\n```python\ndef f():\n    return 1\n```\nThis works. And then you sh"


def test_boundaries_skip_open_code_blocks_and_colon_lines():
    cuts = [CODE_ANSWER[:c] for c in ts.sentence_boundaries(CODE_ANSWER)]
    assert cuts == [
        "Sure.",
        "Sure. Here is code:\n```python\ndef f():\n    return 1\n```",
        "Sure. Here is code:\n```python\ndef f():\n    return 1\n```\nThis works.",
    ]


@pytest.mark.parametrize(
    "text, max_words, expected",
    [
        (CODE_ANSWER, None, "Sure. Here is code:\n```python\ndef f():\n    return 1\n```\nThis works."),
        (CODE_ANSWER, 4, "Sure."),
        ("1. Buy milk\n2. Buy eggs\n3. Bu", None, "1. Buy milk\n2. Buy eggs"),
        ('He said "no." Then he left without a', None, 'He said "no."'),
        ("One. Two three. Four five six.", 3, "One. Two three."),
        ("no sentence end here", None, ""),
        ("Subject: Sorry.\n\nDear Sam,\nWe are sorr", None, "Subject: Sorry."),
        ("Complete.", None, "Complete."),
    ],
)
def test_truncate_at_sentence(text, max_words, expected):
    assert ts.truncate_at_sentence(text, max_words) == expected


@pytest.mark.parametrize(
    "text, language",
    [
        ("The weather today is nice and you can go to the park with your dog.", "en"),
        ("El tiempo hoy es muy bueno y se puede ir al parque con el perro.", "es"),
        ("Le temps est beau et vous pouvez aller au parc avec le chien.", "fr"),
        ("Der Hund ist nicht mit mir auf dem Weg und ich bin müde.", "de"),
        ("Привет, как дела? Сегодня хорошая погода.", "cyrillic"),
        ("こんにちは、元気？", "und"),  # too few letters to say
        ("今日はとても良い天気ですね。公園に行きましょう。明日も晴れるといいですね。", "cjk"),
        ("def f(x):\n    return x[::-1]  # reverse", "und"),
        ("Hi!", "und"),
    ],
)
def test_guess_language(text, language):
    assert ts.guess_language(text) == language


def test_boilerplate_is_not_a_refusal_but_is_detected():
    text = "I don't have personal opinions, but many people enjoy spicy food."
    assert ts.is_boilerplate(text) and not ts.is_refusal(text)
    assert not ts.is_boilerplate("Spicy food is popular in many countries.")


@pytest.mark.parametrize(
    "text, refusal",
    [
        ("I won't help you cheat on the exam.", True),
        ("I will not provide instructions for that.", True),
        ("I've got a budget and I won't break the bank on a flight.", False),
        ("I will not forget this dinner, it was lovely.", False),
    ],
)
def test_i_wont_is_a_refusal_only_when_it_refuses(text, refusal):
    assert ts.is_refusal(text) == refusal
