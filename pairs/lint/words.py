"""Words of a persona: the vocabularies the rules consult, tokens, stems and opposites."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from wsteer.textstats import STOPWORDS

Side = Literal["pos", "neg"]
SIDES: tuple[Side, Side] = ("pos", "neg")

# --------------------------------------------------------------------------------------------- vocabularies
# Function words on top of the shared stop list: light verbs and fillers that carry no trait.
FUNCTION_WORDS = STOPWORDS | frozenset(
    """
it its be is isn are gets get got makes make made would will could thing things way ones anyone everyone
something anything everything much many lot rather instead just like because since though although unless whether
yet still however let lets own than then there here ever else whatever whoever whichever cost sake order
as until till upon via per toward towards across among within beyond front behind despite regardless ahead back
away together along around whenever whereas stays stay remains remain becomes become seems seem appears appear
acts act tends tend goes go
""".split()
)

PREPOSITIONS = frozenset(
    """with to for about at on in from by among toward towards into onto over under against
without within across through""".split()
)
DETERMINERS = frozenset("a an the its their his her my our your some any this that these those every each".split())
NEGATIONS = frozenset("not no never without nobody nothing none neither nor cannot nowhere non".split())
# Idioms that contain a negation word but negate nothing about the persona.
NEGATION_IDIOMS = (("no", "matter"), ("not", "only"))
ABSENCE_WORDS = frozenset("lacks lack lacking lacked absent devoid missing".split())
# Baseline words: "neutral" is the absence of a trait, not its opposite pole.
BASELINE_WORDS = frozenset(
    """ordinary normal neutral average typical regular plain default standard generic
unremarkable usual""".split()
)
MENTION_MARKERS = frozenset("pretends pretend pretending claims claim claiming unlike opposite".split())

# Connectives that start a clause, by kind. A rationale or condition must repeat its subject matter on both sides;
# a coordinated single word may instead flip.
CONNECTIVES: dict[tuple[str, ...], str] = {
    ("even", "when"): "condition",
    ("even", "if"): "condition",
    ("even", "though"): "condition",
    ("so", "that"): "rationale",
    ("in", "order", "to"): "rationale",
    ("for", "the", "sake", "of"): "rationale",
    ("at", "the", "cost", "of"): "condition",
    ("rather", "than"): "condition",
    ("instead", "of"): "condition",
    ("as", "long", "as"): "condition",
    ("because",): "rationale",
    ("since",): "rationale",
    ("so",): "rationale",
    ("when",): "condition",
    ("whenever",): "condition",
    ("if",): "condition",
    ("unless",): "condition",
    ("although",): "condition",
    ("though",): "condition",
    ("while",): "condition",
    ("whereas",): "condition",
    ("until",): "condition",
    ("who",): "relative",
    ("which",): "relative",
    ("and",): "coordination",
    ("or",): "coordination",
    ("but",): "coordination",
    ("yet",): "coordination",
    (",",): "coordination",
    (";",): "coordination",
    (":",): "coordination",
    ("—",): "coordination",
    ("–",): "coordination",
    (".",): "sentence",
    ("!",): "sentence",
    ("?",): "sentence",
}
CONFLICT_CUES = (
    ("even", "when"),
    ("even", "if"),
    ("even", "though"),
    ("even", "at"),
    ("at", "the", "cost"),
    ("when", "it", "means"),
    ("when", "that", "means"),
    ("whenever",),
)

# Verbs that state a value instead of acting one out.
STANCE_WORDS = frozenset(
    """values value valuing prizes prizing prioritises prioritizes prioritising
prioritizing cherishes treasures esteems upholds embraces favours favors believes""".split()
)
STANCE_PHRASES = (("cares", "about"), ("committed", "to"), ("devoted", "to"), ("stands", "for"))
ABSTRACT_SUFFIXES = ("ness", "ity", "ism", "dom", "hood", "ship", "ence", "ance", "tion", "sion", "ment", "ing")

# Opposites that morphology can't see. Compared on stems, both directions.
ANTONYM_PAIRS = """
fast:slow faster:slower quick:slow more:less most:least high:low early:late strong:weak hot:cold warm:cold
brave:cowardly bold:timid cautious:reckless careful:reckless generous:stingy generous:selfish humble:arrogant
modest:boastful calm:anxious kind:cruel gentle:harsh polite:rude open:secretive open:closed candid:evasive
frank:evasive direct:evasive trusting:suspicious trust:suspect help:harm helps:harms hurt:help accept:reject
admit:deny admits:hides reveal:conceal reveals:hides share:hide shares:hides praise:criticise praise:criticize
praise:blame give:take gives:takes safe:risky safe:dangerous truth:lie truths:lies true:false win:lose love:hate
include:exclude obey:defy obeys:defies follow:break follows:breaks keep:break keeps:breaks persist:quit
persists:quits simple:complex easy:hard easier:harder better:worse good:bad right:wrong friend:enemy
optimistic:pessimistic strict:lenient strictly:gently thrifty:wasteful lazy:diligent tidy:messy loud:quiet
patient:hasty curious:indifferent accepting:judgmental forgiving:vindictive forgives:punishes
""".split()
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "mis")

# --------------------------------------------------------------------------------------------- tokens
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*['’]?|[^\sA-Za-z0-9]")


@dataclass
class Token:
    """One word or punctuation mark of a persona, with how the mirror test classified it."""

    text: str
    norm: str
    index: int
    is_word: bool
    is_content: bool
    mark: str = "same"  # same | moved | flip | extra | unmirrored | negation | function
    clause: int = 0
    is_connective: bool = False
    in_unmirrored_clause: bool = False


def _normalise(text: str) -> str:
    return text.lower().replace("’", "'").rstrip("'").removesuffix("'s")


def stem(word: str) -> str:
    """A light suffix-stripping stem, enough to match "tells"/"telling" and "mistake"/"mistakes"."""
    word = _normalise(word)
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("edly", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + replacement
    return word


def same_word(a: str, b: str) -> bool:
    """Two words are the same up to a light stem ("honest" = "honesty", "giving" = "gives")."""
    sa, sb = stem(a), stem(b)
    if sa == sb:
        return True
    short, long_ = sorted((sa, sb), key=len)
    slack = 1 if len(short) == 3 else 2
    return len(short) >= 3 and long_.startswith(short) and len(long_) - len(short) <= slack


def _antonym_lexicon() -> set[tuple[str, str]]:
    pairs = set()
    for item in ANTONYM_PAIRS:
        a, b = item.split(":")
        pairs.add((stem(a), stem(b)))
        pairs.add((stem(b), stem(a)))
    return pairs


_ANTONYMS = _antonym_lexicon()


def is_antonym(a: str, b: str) -> bool:
    """True for known opposites: a negating prefix (honest/dishonest), -ful/-less, or the small lexicon."""
    a, b = _normalise(a), _normalise(b)
    for x, y in ((a, b), (b, a)):
        if any(x == prefix + y or x == prefix + "-" + y for prefix in NEGATING_PREFIXES) and len(y) >= 3:
            return True
        if x.endswith("ful") and y == x[:-3] + "less":
            return True
    return (stem(a), stem(b)) in _ANTONYMS


def tokenize(text: str) -> list[Token]:
    """Words and punctuation of ``text``; content words are those that are not function, negation or absence
    words (those have rules of their own)."""
    tokens = []
    for index, raw in enumerate(_TOKEN.findall(text)):
        norm = _normalise(raw)
        is_word = bool(re.match(r"[a-z0-9]", norm))
        content = (
            is_word
            and norm not in FUNCTION_WORDS
            and norm not in NEGATIONS
            and norm not in ABSENCE_WORDS
            and not norm.endswith("n't")
        )
        tokens.append(Token(raw, norm, index, is_word, content))
    return tokens
