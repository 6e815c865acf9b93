"""Judge-free text measurements shared by the screen, curation and eval.

These are the nuisance axes the seed warns about — length, refusal, hedging, confidence, register, repetition —
plus persona leakage: the persona's own words showing up in a generation ("As an honest person, I…").
They are lexicon heuristics: cheap, transparent and deterministic, meant for *differences* between matched arms,
not as absolute truths about one text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n|$)")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and inner apostrophes)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    """Number of words in ``text``."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class Sentence:
    """A sentence with its character span in the source text."""

    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Sentences (ending at . ! ? or a newline) with their spans; whitespace-only pieces are skipped."""
    out = []
    for match in _SENTENCE.finditer(text):
        piece = match.group(0)
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append(Sentence(piece.strip(), match.start() + lead, match.start() + lead + len(piece.strip())))
    return out


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern:
    alternatives = sorted((re.escape(p).replace(r"\ ", r"\s+") for p in phrases), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------- refusal
REFUSAL_PHRASES = (
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't do that",
    "i cannot do that",
    "i'm unable to",
    "i am unable to",
    # "I won't" alone also opens "I won't break the bank"; only its refusing continuations count
    "i won't help",
    "i won't assist",
    "i won't provide",
    "i won't do that",
    "i won't answer",
    "i won't be able to",
    "i will not help",
    "i will not assist",
    "i will not provide",
    "i will not do that",
    "i will not answer",
    "i'm not able to",
    "i am not able to",
    "i must decline",
    "i have to decline",
    "i'm sorry, but i",
    "i am sorry, but i",
    "as an ai",
    "as a language model",
    "i can't comply",
    "i cannot comply",
    "i'm not comfortable",
    "it is not appropriate for me",
    "it's not appropriate for me",
)
_REFUSAL = _phrase_pattern(REFUSAL_PHRASES)


def is_refusal(text: str, window: int = 240) -> bool:
    """True if the answer opens with a refusal (a refusal phrase within its first ``window`` characters)."""
    return bool(_REFUSAL.search(text.replace("’", "'")[:window]))


# Assistant boilerplate that is not a refusal but is as easy to learn as one: the model talking about being a model.
BOILERPLATE_PHRASES = (
    "as an ai",
    "as a language model",
    "as an artificial intelligence",
    "i'm just an ai",
    "i am just an ai",
    "i'm an ai",
    "i am an ai",
    "i don't have personal",
    "i do not have personal",
    "i don't have feelings",
    "i do not have feelings",
    "i don't have opinions",
    "i do not have opinions",
)
_BOILERPLATE = _phrase_pattern(BOILERPLATE_PHRASES)


def is_boilerplate(text: str, window: int = 240) -> bool:
    """True if the answer opens with AI self-description ("As an AI, …", "I don't have personal opinions")."""
    return bool(_BOILERPLATE.search(text.replace("’", "'")[:window]))


# --------------------------------------------------------------------------------------------- hedging / confidence
HEDGE_PHRASES = (
    "might",
    "may",
    "perhaps",
    "possibly",
    "probably",
    "likely",
    "unlikely",
    "seems",
    "seem",
    "appears",
    "i think",
    "i believe",
    "i guess",
    "i suppose",
    "somewhat",
    "could be",
    "generally",
    "typically",
    "usually",
    "it depends",
    "not sure",
    "arguably",
    "maybe",
    "roughly",
    "approximately",
    "tend to",
    "in some cases",
    "to some extent",
    "it's possible",
    "it is possible",
)
CONFIDENCE_PHRASES = (
    "definitely",
    "certainly",
    "clearly",
    "undoubtedly",
    "absolutely",
    "without a doubt",
    "of course",
    "obviously",
    "surely",
    "guaranteed",
    "always",
    "never",
    "must",
    "no doubt",
    "for sure",
    "100%",
    "i'm confident",
    "i am confident",
    "i'm certain",
    "i am certain",
    "there is no question",
)
_HEDGE = _phrase_pattern(HEDGE_PHRASES)
_CONFIDENCE = _phrase_pattern(CONFIDENCE_PHRASES)


def _rate_per_100_words(pattern: re.Pattern, text: str) -> float:
    n = word_count(text)
    return 100.0 * len(pattern.findall(text.replace("’", "'"))) / n if n else 0.0


def hedging_rate(text: str) -> float:
    """Hedge markers ("might", "I think", "it depends", …) per 100 words."""
    return _rate_per_100_words(_HEDGE, text)


def confidence_rate(text: str) -> float:
    """Confidence markers ("definitely", "clearly", "without a doubt", …) per 100 words."""
    return _rate_per_100_words(_CONFIDENCE, text)


# --------------------------------------------------------------------------------------------- register
_INFORMAL = _phrase_pattern(
    (
        "hey",
        "gonna",
        "wanna",
        "gotta",
        "kinda",
        "lol",
        "yeah",
        "yep",
        "nope",
        "ok",
        "okay",
        "cool",
        "awesome",
        "super",
        "totally",
        "stuff",
        "guys",
    )
)


def formality(text: str) -> float:
    """Register proxy in points per 100 words: long words (>= 7 letters) minus contractions, informal
    words and exclamation marks. Higher is more formal; compare arms, not single texts."""
    tokens = words(text)
    if not tokens:
        return 0.0
    long_words = sum(len(w) >= 7 for w in tokens)
    contractions = sum("'" in w for w in tokens)
    informal = len(_INFORMAL.findall(text)) + text.count("!")
    return 100.0 * (long_words - contractions - informal) / len(tokens)


# --------------------------------------------------------------------------------------------- repetition
def distinct_n(text: str, n: int = 2) -> float:
    """Unique n-grams / all n-grams of the words (1.0 for texts shorter than n words)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def is_degenerate(text: str, n: int = 4, max_repeats: int = 3, min_words: int = 12) -> bool:
    """True for repetition loops: some ``n``-gram of words occurs more than ``max_repeats`` times, or the
    text is long and its distinct-3 falls under 0.4."""
    tokens = words(text)
    if len(tokens) < min_words:
        return False
    grams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if grams and max(grams.values()) > max_repeats:
        return True
    return distinct_n(text, 3) < 0.4


# --------------------------------------------------------------------------------------------- persona words
STOPWORDS = frozenset(
    """
a an the and or but if then else when while of at by for with about against between into through during before
after above below to from up down in out on off over under again further once here there all any both each few
more most other some such no nor not only own same so than too very s t can will just don should now is are was
were be been being have has had having do does did doing i me my myself we our ours ourselves you your yours
yourself yourselves he him his himself she her hers herself it its itself they them their theirs themselves what
which who whom this that these those am would could might must shall may also even it's its means mean
person people someone somebody one who whose whoever others other's others' always never sometimes often
pretend pretending act acting imagine you're you are role
""".split()
)


def persona_terms(*personas: str, extra: Iterable[str] = ()) -> list[str]:
    """Content words of the personas (stop words and template scaffolding removed) plus ``extra`` terms.

    These are the words whose appearance in a generation counts as persona leakage.
    """
    terms: list[str] = []
    for persona in personas:
        for word in words(persona):
            base = word.removesuffix("'s").strip("'")
            if len(base) >= 3 and base not in STOPWORDS and base not in terms:
                terms.append(base)
    for term in extra:
        term = term.strip().lower()
        if term and term not in terms:
            terms.append(term)
    return terms


# Inflections a persona term is still recognised with ("honest" -> "honestly", "honesty"). Shared with the
# persona-vocabulary logits processor (wsteer.leak) so that what is blocked is what is counted as a leak.
LEAK_SUFFIXES = ("s", "es", "ed", "d", "ing", "ly", "y", "ity", "ness", "ful", "fully")
_SUFFIXES = "(?:" + "|".join(LEAK_SUFFIXES) + ")?"


def _term_pattern(terms: Sequence[str]) -> re.Pattern | None:
    if not terms:
        return None
    alternatives = sorted((re.escape(t).replace(r"\ ", r"\s+") for t in terms), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")" + _SUFFIXES + r"\b", re.IGNORECASE)


def find_leaks(text: str, terms: Sequence[str]) -> list[str]:
    """Persona terms (with common inflections) found in ``text``: word-boundary, case-insensitive."""
    pattern = _term_pattern(terms)
    return [m.group(0) for m in pattern.finditer(text)] if pattern else []


def leaks(text: str, terms: Sequence[str]) -> bool:
    """True if any persona term occurs in ``text`` (see :func:`find_leaks`)."""
    return bool(find_leaks(text, terms))


# Sentences where the model describes itself as the persona: "As an honest person, …", "Being someone who …".
_SELF_IDENTIFICATION = re.compile(
    r"\b(?:as|being)\s+(?:a|an|the|someone|somebody)\b"
    r"|\bI(?:'m|’m|\s+am)\s+(?:a|an|someone|somebody|the\s+kind)\b"
    r"|\b(?:my|our)\s+(?:nature|persona|character|role|values?|principles?)\b"
    r"|\b(?:person|someone|somebody)\s+who\b",
    re.IGNORECASE,
)


def find_persona_echo(text: str, terms: Sequence[str]) -> list[Sentence]:
    """Sentences that restate the persona: a self-identification ("As a …", "I am a …", "someone who …")
    together with a persona term, or two or more distinct persona terms in one sentence."""
    pattern = _term_pattern(terms)
    if pattern is None:
        return []
    echoes = []
    for sentence in split_sentences(text):
        found = {m.group(0).lower() for m in pattern.finditer(sentence.text)}
        if (found and _SELF_IDENTIFICATION.search(sentence.text)) or len(found) >= 2:
            echoes.append(sentence)
    return echoes


def has_persona_echo(text: str, terms: Sequence[str]) -> bool:
    """True if any sentence of ``text`` restates the persona (see :func:`find_persona_echo`)."""
    return bool(find_persona_echo(text, terms))


def strip_sentences(text: str, sentences: Sequence[Sentence]) -> str:
    """``text`` with the given sentences removed and whitespace tidied."""
    pieces, cursor = [], 0
    for sentence in sorted(sentences, key=lambda s: s.start):
        pieces.append(text[cursor : sentence.start])
        cursor = sentence.end
    pieces.append(text[cursor:])
    stripped = "".join(pieces)
    stripped = re.sub(r"[ \t]{2,}", " ", stripped)
    stripped = re.sub(r"\n{3,}", "\n\n", stripped)
    return stripped.strip()


_CLOSERS = "\"')]”’*"
_FENCE = "```"


def sentence_boundaries(text: str) -> list[int]:
    """Character offsets where ``text`` could be cut without splitting a sentence or a code block.

    A boundary follows a sentence that ends in . ! ? (and closing quotes/brackets), or a complete line (one that
    ends with a newline) — list items and code lines have no full stop. The piece before the boundary must hold a
    letter and not end in a colon, comma or semicolon (so "2." of a numbered list, "Here is the code:" and
    "Dear Sam," are not endings), or be a code fence. Boundaries inside an open
    ``` block are skipped, so a cut never leaves a code block unclosed. The end of ``text`` counts only when the
    last piece ends with . ! ? or a closed fence.
    """
    cuts: list[int] = []
    fences = 0
    for match in _SENTENCE.finditer(text):
        piece = match.group(0)
        body = piece.strip()
        if not body:
            continue
        is_fence = body.startswith(_FENCE)
        fences += body.count(_FENCE)
        if fences % 2:
            continue  # inside a code block
        end = match.start() + len(piece.rstrip())
        ends_line = piece.endswith("\n")
        ends_sentence = body.rstrip(_CLOSERS)[-1:] in (".", "!", "?")
        meaningful = is_fence or (any(c.isalpha() for c in body) and body[-1] not in ":,;")
        if meaningful and (ends_sentence or ends_line or (is_fence and match.end() == len(text))):
            cuts.append(end)
    return cuts


def truncate_at_sentence(text: str, max_words: int | None = None) -> str:
    """The longest prefix of ``text`` that ends at a sentence boundary (see :func:`sentence_boundaries`) and has
    at most ``max_words`` words; "" when there is none. Used to drop a cut-off last sentence and to trim the
    longer side of a pair."""
    best = ""
    for cut in sentence_boundaries(text):
        prefix = text[:cut].rstrip()
        if max_words is not None and word_count(prefix) > max_words:
            break
        best = prefix
    return best


# --------------------------------------------------------------------------------------------- language
_SCRIPTS = (
    ("cyrillic", 0x0400, 0x052F),
    ("greek", 0x0370, 0x03FF),
    ("arabic", 0x0600, 0x06FF),
    ("hebrew", 0x0590, 0x05FF),
    ("devanagari", 0x0900, 0x097F),
    ("thai", 0x0E00, 0x0E7F),
    ("cjk", 0x3040, 0x30FF),
    ("cjk", 0x4E00, 0x9FFF),
    ("hangul", 0xAC00, 0xD7AF),
)
_STOPWORDS_BY_LANGUAGE = {
    "en": "the and is are to of you your that it in for with this be have not on was what can will".split(),
    "es": "el la los las que y en por para una es con no se del al lo pero como más muy".split(),
    "fr": "le la les des et est que une pour dans pas vous ce qui sur du au avec sont il".split(),
    "de": "der die das und ist nicht ich sie zu mit ein eine den auf für es sich auch dem".split(),
    "it": "il di che non per un una sono con è del della gli nel anche le ma come ho".split(),
    "pt": "que não para um uma com os as do da é em no na se mais por ao você".split(),
    "nl": "het een en van is niet dat op te voor met zijn je ik er maar ook dit".split(),
}
_LETTERS = re.compile(r"[^\W\d_]+")


def guess_language(text: str, min_letters: int = 20) -> str:
    """A cheap language guess for spotting a side that switched language: ``en``/``es``/``fr``/``de``/``it``/
    ``pt``/``nl`` from stop words for Latin script, the script name (``cyrillic``, ``cjk``, …) otherwise, and
    ``und`` when the text is too short or too ambiguous (code, lists of names) to tell."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < min_letters:
        return "und"
    scripts: Counter = Counter()
    for char in letters:
        code = ord(char)
        scripts[
            next((name for name, low, high in _SCRIPTS if low <= code <= high), "latin" if code < 0x0250 else "other")
        ] += 1
    script, count = scripts.most_common(1)[0]
    if script != "latin":
        return script if count > len(letters) / 2 else "und"
    tokens = _LETTERS.findall(text.lower())
    hits = Counter({lang: sum(t in set(stop) for t in tokens) for lang, stop in _STOPWORDS_BY_LANGUAGE.items()})
    (best, first), (_, second) = hits.most_common(2)
    return best if first >= 3 and first >= 1.5 * second else "und"


# --------------------------------------------------------------------------------------------- one call for all
def text_metrics(text: str, terms: Sequence[str] = ()) -> dict[str, float]:
    """Every judge-free measurement of one text, as floats (booleans as 0/1)."""
    return {
        "words": float(word_count(text)),
        "refusal": float(is_refusal(text)),
        "hedging": hedging_rate(text),
        "confidence": confidence_rate(text),
        "formality": formality(text),
        "distinct_2": distinct_n(text, 2),
        "degenerate": float(is_degenerate(text)),
        "leak": float(leaks(text, terms)),
        "echo": float(has_persona_echo(text, terms)),
    }
