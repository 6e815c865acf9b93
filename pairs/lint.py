"""The mirror test for persona pairs, as explainable lint rules.

A steering direction is mean(pos − neg), so every word that differs between the two personas is a candidate axis.
A good pair names the *same* situation from two poles: apart from the words that carry the pole, everything on
one side has a counterpart on the other. This module checks that, word by word, and reports findings with a rule
id, a severity (``error`` fails the lint, ``warning`` does not), a message and a one-line fix.

How a word gets its counterpart (the accounting behind the side-by-side diff):

* **same / moved** — the word (up to a light stem: ``tells`` = ``telling``) also occurs on the other side. In the
  same position it is "same"; elsewhere it is "moved", which is how a priority inversion mirrors
  ("looks after others' wellbeing even when it means defying authority" / "defers to authority even when
  others' wellbeing suffers for it": wellbeing and authority occur on both sides, in swapped roles).
* **flip** — the word has no copy on the other side but is aligned with one there: an opposite (a prefix
  antonym like honest/dishonest, careful/careless, or one from a small lexicon), or the word in the same place of
  a ``difflib`` word diff (vim/emacs). Flips carry the pole.
* **extra** — a leftover word beside a flip: the pole said in more words on one side ("brave" / "easily
  frightened"). A warning, unless it sits in a prepositional phrase ("honest with friends"): that is a qualifier.
* **unmirrored** — a content word with none of the above: it varies between the sides with nothing to vary
  against, so it becomes its own axis.

Function words ("the", "it", "means", "stays") are not counted, and an equal run of them between two changes does
not separate the changes: flips pair up within a changed *region* of the diff. When the words both sides share
occur in a different order (a priority inversion), flips may pair across regions too.

Clauses are checked on top of words. A persona splits into clauses at connectives (because, even when, and, …).
The first clause may flip wholly (it carries the pole); every later clause must be *anchored*: share a content
word (or an opposite) with the other side. A rationale only one side gives ("… because modal editing is faster"
vs "… because one scheme is simpler") is unanchored, so it is unmirrored however neatly the sentences align.
Coordinated single words ("honest and brave" / "dishonest and cowardly") count as a further flip instead.

Rules (ids are stable; tests and JSON consumers key on them):

    identical           error    pos and neg are the same text
    negation            error    not / no / never / n't / without … (seed rule 3)
    absence             error    one side is only the absence of the other ("not honest", "lacks patience",
                                 "neutral") rather than the opposite pole (seed rule 4)
    pole-in-other       error    one side's words all appear verbatim in the other, or the other side mentions
                                 them ("pretends to be honest")
    unmirrored-clause   error    a later clause with no counterpart on the other side (seed mirror test)
    unmirrored-content  error    content words with no counterpart on the other side
    unbalanced-flip     warning  the pole is said in more words on one side ("forgives" / "holds a grudge
                                 against"); a qualifier in a prepositional phrase ("with friends") is unmirrored
    length-imbalance    warning  one side much longer (error when grossly so)
    long-persona        warning  over 20 words, several sentences or more than three clauses (seed rule 2)
    abstract-value      warning  a stated value ("values wisdom over speed") instead of an enactable
                                 conflict (seed rule 5)
    extra-flip          warning  the pole flips in more than one place (two traits bundled); two places are
                                 fine when the pair inverts a priority (the shared words swap order)
    form-mismatch       warning  one side reads as an adjective, the other as a clause: one template can't fit
                                 both
    second-opinion      warning  (only with a second opinion) the model says the pair fails; severity configurable

These are heuristics over words, not a parser: they catch the common failures cheaply and say why, and a second
opinion (:mod:`wsteer.pairs.second_opinion`) can ask a model the same question.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import asdict, dataclass, field
from typing import Literal, Sequence

from wsteer.pairs.personas import PersonaPair, persona_form

from wsteer.config import option
from wsteer.textstats import STOPWORDS

Severity = Literal["error", "warning"]
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


@dataclass
class LintConfig:
    """``wsteer pairs lint``: mirror-test persona pairs from a file, or one pair given as pos and neg."""

    file: str | None = option(None, "Pairs file (YAML or JSONL) to lint (or give it as the positional FILE).")
    pos: str | None = option(None, "pos persona (with neg, instead of file).")
    neg: str | None = option(None, "neg persona (with pos).")
    ids: list[str] = option(help="Only these pair ids of file (empty: all).", factory=list)
    json: bool = option(False, "Print JSON instead of the human table.")
    second_opinion: str | None = option(
        None,
        "Also ask a model: a YAML file of SecondOpinionConfig keys (backend, base_url, model, api_key_env, "
        "local, …); off unless given.",
    )


# --------------------------------------------------------------------------------------------- findings
@dataclass
class Finding:
    """One lint result: which rule, how bad, what and how to fix it."""

    rule: str
    severity: Severity
    message: str
    fix: str
    side: str | None = None
    words: list[str] = field(default_factory=list)


@dataclass
class DiffBlock:
    """One aligned block of the word diff: ``op`` is difflib's (equal, replace, insert, delete)."""

    op: str
    pos: list[Token]
    neg: list[Token]


@dataclass
class LintReport:
    """The mirror test of one pair: findings and the aligned word diff."""

    pos: str
    neg: str
    findings: list[Finding]
    diff: list[DiffBlock]
    id: str | None = None
    where: str | None = None
    second_opinion: dict | None = None

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity error."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity warning."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is above warning."""
        return not self.errors

    @property
    def rules(self) -> set[str]:
        """The ids of the rules that fired."""
        return {f.rule for f in self.findings}

    def to_dict(self) -> dict:
        """A JSON-ready dict: pair, status, findings and the diff (tokens with their marks)."""
        return {
            "id": self.id,
            "where": self.where,
            "pos": self.pos,
            "neg": self.neg,
            "status": "fail" if self.errors else ("warn" if self.findings else "pass"),
            "findings": [asdict(f) for f in self.findings],
            "diff": [
                {"op": b.op, "pos": [[t.text, t.mark] for t in b.pos], "neg": [[t.text, t.mark] for t in b.neg]}
                for b in self.diff
            ],
            "diff_text": format_diff(self.diff),
            **({"second_opinion": self.second_opinion} if self.second_opinion is not None else {}),
        }


# --------------------------------------------------------------------------------------------- clauses
@dataclass
class Clause:
    """A span of tokens introduced by a connective (the first clause has none)."""

    tokens: list[Token]
    kind: str  # main | rationale | condition | coordination | relative | sentence
    connective: str

    @property
    def content(self) -> list[Token]:
        return [t for t in self.tokens if t.is_content]

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)


def _match_connective(norms: Sequence[str], start: int) -> tuple[tuple[str, ...], str] | None:
    for words, kind in sorted(CONNECTIVES.items(), key=lambda item: -len(item[0])):
        if tuple(norms[start : start + len(words)]) == words:
            return words, kind
    return None


def split_clauses(tokens: list[Token]) -> list[Clause]:
    """Split at connectives; each token's ``clause`` is set to its clause's index. Empty clauses are dropped."""
    norms = [t.norm for t in tokens]
    clauses: list[Clause] = [Clause([], "main", "")]
    i = 0
    while i < len(tokens):
        match = _match_connective(norms, i)
        if match:
            words, kind = match
            if clauses[-1].tokens or clauses[-1].kind != "main":
                clauses.append(Clause([], kind, " ".join(words)))
            else:  # a leading connective ("when angry, …") opens the first clause
                clauses[-1] = Clause([], "main", " ".join(words))
            clauses[-1].tokens.extend(tokens[i : i + len(words)])
            for token in tokens[i : i + len(words)]:
                token.is_connective = True
            i += len(words)
            continue
        clauses[-1].tokens.append(tokens[i])
        i += 1
    clauses = [c for c in clauses if any(t.is_word for t in c.tokens) or c.kind == "main"]
    for number, clause in enumerate(clauses):
        for token in clause.tokens:
            token.clause = number
    return clauses


# --------------------------------------------------------------------------------------------- the mirror test
class _Sides:
    """Both personas tokenised and split, plus the cross-side word matches."""

    def __init__(self, pos: str, neg: str):
        self.text = {"pos": pos, "neg": neg}
        self.tokens = {"pos": tokenize(pos), "neg": tokenize(neg)}
        self.clauses = {side: split_clauses(self.tokens[side]) for side in SIDES}

    def other(self, side: Side) -> Side:
        return "neg" if side == "pos" else "pos"

    def content(self, side: Side) -> list[Token]:
        return [t for t in self.tokens[side] if t.is_content]

    def words(self, side: Side) -> list[Token]:
        return [t for t in self.tokens[side] if t.is_word]

    def shared(self, token: Token, side: Side) -> bool:
        """The word occurs (up to its stem) on the other side."""
        return any(same_word(token.norm, t.norm) for t in self.content(self.other(side)))

    def opposite(self, token: Token, side: Side) -> bool:
        """The other side holds a known opposite of the word."""
        return any(is_antonym(token.norm, t.norm) for t in self.content(self.other(side)))

    def anchored(self, token: Token, side: Side) -> bool:
        return self.shared(token, side) or self.opposite(token, side)


def _diff(sides: _Sides) -> list[DiffBlock]:
    pos, neg = sides.tokens["pos"], sides.tokens["neg"]
    matcher = difflib.SequenceMatcher(None, [t.norm for t in pos], [t.norm for t in neg], autojunk=False)
    return [DiffBlock(op, pos[i1:i2], neg[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes()]


def _regions(blocks: list[DiffBlock]) -> list[list[DiffBlock]]:
    """Changed stretches of the diff: runs of changed blocks, joined across equal runs of function words only.

    An equal "it" or "the" between two changes is a coincidence of the alignment, not an anchor, so the flips on
    either side of it belong together. A connective ("and", "because", ",") does separate them: flips in two
    clauses are two flips.
    """
    regions: list[list[DiffBlock]] = []
    current: list[DiffBlock] = []
    pending: list[DiffBlock] = []  # function-only equal blocks that may join two changes
    for block in blocks:
        if block.op != "equal":
            if current:
                current += pending
            current.append(block)
            pending = []
        elif current and not any(t.is_content or t.is_connective for t in block.pos + block.neg):
            pending.append(block)
        else:
            if current:
                regions.append(current)
            current, pending = [], []
    if current:
        regions.append(current)
    return regions


def _unmirrored_clauses(sides: _Sides) -> dict[Side, list[Clause]]:
    """Later clauses with content but no anchor, except coordinated single-word flips."""
    out: dict[Side, list[Clause]] = {"pos": [], "neg": []}
    for side in SIDES:
        other = sides.clauses[sides.other(side)]
        for number, clause in enumerate(sides.clauses[side]):
            if number == 0 or not clause.content:
                continue
            if any(sides.anchored(t, side) for t in clause.content):
                continue
            counterpart = other[number] if number < len(other) else None
            parallel_flip = (
                clause.kind == "coordination"
                and counterpart is not None
                and counterpart.connective == clause.connective
                and len(clause.content) == 1
                and len(counterpart.content) == 1
            )
            if not parallel_flip:
                out[side].append(clause)
    return out


def _mark_tokens(sides: _Sides, blocks: list[DiffBlock], inverted: bool) -> list[list[DiffBlock]]:
    """Classify every token (see the module docstring); returns the flip sites.

    Open words pair up within their changed region (see :func:`_regions`): opposites first, then by position.
    When the pair inverts a priority the flips travel with the swapped words, so words left open in one region
    may pair with words left open in another. A leftover in a region that flips is "extra" (the pole said in
    more words on one side: "forgives" / "holds a grudge against") unless it sits in a prepositional phrase
    ("honest with friends"), which is a qualifier; every other leftover is unmirrored. A flip site is a region
    that holds a flip.
    """
    for block in blocks:
        for side in SIDES:
            for token in getattr(block, side):
                if token.norm in NEGATIONS or token.norm.endswith("n't"):
                    token.mark = "negation"
                elif block.op == "equal":
                    token.mark = "same"
                elif not token.is_content:
                    token.mark = "function"
                elif token.in_unmirrored_clause:
                    token.mark = "unmirrored"
                else:
                    token.mark = "open"
    _mark_moved(sides, blocks)
    regions = _regions(blocks)
    leftovers: dict[Side, list[Token]] = {"pos": [], "neg": []}
    in_flipping_region: set[int] = set()
    for region in regions:
        open_pos = [t for b in region for t in b.pos if t.mark == "open"]
        open_neg = [t for b in region for t in b.neg if t.mark == "open"]
        for token in list(open_pos):  # opposites first, wherever they sit in the region
            partner = next((t for t in open_neg if is_antonym(token.norm, t.norm)), None)
            if partner is not None:
                token.mark = partner.mark = "flip"
                open_pos.remove(token)
                open_neg.remove(partner)
        for a, b in zip(open_pos, open_neg):  # then by position
            a.mark = b.mark = "flip"
        if any(t.mark == "flip" for b in region for t in b.pos):
            in_flipping_region.update(id(t) for b in region for t in b.pos + b.neg)
        leftovers["pos"] += open_pos[len(open_neg) :]
        leftovers["neg"] += open_neg[len(open_pos) :]
    for side in SIDES:  # a leftover whose opposite sits elsewhere on the other side is a displaced flip
        for token in leftovers[side]:
            if sides.opposite(token, side):
                token.mark = "flip"
    left = {side: [t for t in leftovers[side] if t.mark == "open"] for side in SIDES}
    if inverted:
        for a, b in zip(left["pos"], left["neg"]):
            a.mark = b.mark = "flip"
    for side in SIDES:
        for token in left[side]:
            if token.mark == "open":
                extra = id(token) in in_flipping_region and not _in_prepositional_phrase(sides.tokens[side], token)
                token.mark = "extra" if extra else "unmirrored"
    return [region for region in regions if any(t.mark == "flip" for b in region for t in b.pos + b.neg)]


def _in_prepositional_phrase(tokens: list[Token], token: Token) -> bool:
    """True if ``token`` follows a preposition, skipping determiners ("with friends", "for the team")."""
    i = token.index - 1
    while i >= 0 and tokens[i].norm in DETERMINERS:
        i -= 1
    return i >= 0 and tokens[i].norm in PREPOSITIONS


def _mark_moved(sides: _Sides, blocks: list[DiffBlock]) -> None:
    """Open words that occur among the other side's changed words are "moved" (mirrored by reordering).

    Occurrences are counted: in "bends a rule when following it …" / "follows a rule even when following it …"
    one "following" is matched in place, so the other side's "follows" has no copy left and stays open (it is
    the flip of "bends").
    """
    changed = {side: [t for b in blocks if b.op != "equal" for t in getattr(b, side) if t.is_content] for side in SIDES}
    for side in SIDES:
        other = sides.other(side)
        used: list[Token] = []
        for token in changed[side]:
            if token.mark != "open":
                continue
            match = next((t for t in changed[other] if same_word(token.norm, t.norm) and t not in used), None)
            if match is not None:
                used.append(match)
                token.mark = "moved"


def _inverts_priority(sides: _Sides) -> bool:
    """True when the words both sides share occur in a different order (a swap of roles, as in rule 5)."""

    def order(side: Side) -> list[str]:
        seen: list[str] = []
        for token in sides.content(side):
            if sides.shared(token, side) and not any(same_word(token.norm, s) for s in seen):
                seen.append(token.norm)
        return seen

    pos_order = order("pos")
    neg_positions = []
    for word in pos_order:
        index = next((i for i, other in enumerate(order("neg")) if same_word(word, other)), None)
        if index is not None:
            neg_positions.append(index)
    return neg_positions != sorted(neg_positions)


def _quote(words: Sequence[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def _negation_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        tokens = sides.tokens[side]
        hits = []
        for i, token in enumerate(tokens):
            following = tokens[i + 1].norm if i + 1 < len(tokens) else ""
            if (token.norm, following) in NEGATION_IDIOMS:
                continue
            if token.norm in NEGATIONS or token.norm.endswith("n't"):
                hits.append(token.text)
        if hits:
            findings.append(
                Finding(
                    "negation",
                    "error",
                    f"{side} uses negation {_quote(hits)}: a negated trait steers toward the "
                    "trait word itself, not away from it (seed rule 3)",
                    "say the opposite positively: 'untruthful', not 'not truthful'",
                    side,
                    hits,
                )
            )
    return findings


def _absence_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        other = sides.other(side)
        content = [t for t in sides.content(side) if t.norm not in ABSENCE_WORDS]
        marker = [
            t.text
            for t in sides.tokens[side]
            if t.norm in NEGATIONS or t.norm.endswith("n't") or t.norm in ABSENCE_WORDS
        ]
        reason = None
        if not content:
            reason = "names no trait at all"
        elif all(t.norm in BASELINE_WORDS for t in content):
            reason = f"is a neutral baseline ({_quote(t.text for t in content)})"
        elif marker and all(sides.shared(t, side) for t in content):
            reason = f"only negates the {other} side ({_quote(marker)} + its words)"
        if reason and sides.content(other):
            findings.append(
                Finding(
                    "absence",
                    "error",
                    f"{side} {reason}: the absence of a trait is not its opposite pole, so the "
                    f"direction points at 'has the trait' vs 'has nothing' (seed rule 4)",
                    "name the same situation from the opposite pole (e.g. 'honest' / 'deceitful')",
                    side,
                    [t.text for t in content] or marker,
                )
            )
    return findings


def _pole_in_other_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        other = sides.other(side)
        mine = sides.content(side)
        if not mine:
            continue
        theirs = sides.tokens[other]
        verbatim = {t.norm for t in theirs}
        contained = all(t.norm in verbatim for t in mine) and any(
            t.is_content and t.norm not in {m.norm for m in mine} for t in theirs
        )
        mentioned = []
        for i, token in enumerate(theirs):
            if token.norm in MENTION_MARKERS or token.norm in NEGATIONS or token.norm.endswith("n't"):
                window = [t.norm for t in theirs[i + 1 : i + 5]]
                mentioned += [t.text for t in mine if t.norm in window and t.text not in mentioned]
        if contained or mentioned:
            words = [t.text for t in mine] if contained else mentioned
            how = "all appear verbatim in" if contained else "are mentioned by"
            findings.append(
                Finding(
                    "pole-in-other",
                    "error",
                    f"{side}'s pole word(s) {_quote(words)} {how} {other}: both system "
                    "prompts then contain the pole, so the contrast blurs and the word leaks into both sides",
                    f"write {other} from its own pole without naming {side}'s words",
                    side,
                    words,
                )
            )
    return findings


def _clause_findings(unmirrored: dict[Side, list[Clause]]) -> list[Finding]:
    findings = []
    for side in SIDES:
        for clause in unmirrored[side]:
            kind = {"rationale": "a rationale", "condition": "a condition", "relative": "a relative clause"}.get(
                clause.kind, "a clause"
            )
            findings.append(
                Finding(
                    "unmirrored-clause",
                    "error",
                    f"{side} has {kind} with no counterpart on the other side: "
                    f"'{clause.text}' (none of {_quote(t.text for t in clause.content)} appear there, or their "
                    "opposites), so it becomes its own axis",
                    "give both sides the same clause with only the pole flipped, or drop it",
                    side,
                    [t.text for t in clause.content],
                )
            )
    return findings


def _content_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        loose = [
            t.text for t in sides.tokens[side] if t.mark == "unmirrored" and t.is_content and not t.in_unmirrored_clause
        ]
        if loose:
            findings.append(
                Finding(
                    "unmirrored-content",
                    "error",
                    f"{side} has {_quote(loose)} with no counterpart in "
                    f"{sides.other(side)}: words on one side only become their own axis",
                    "mirror each word on the other side (same word or its opposite), or drop it",
                    side,
                    loose,
                )
            )
    return findings


def _extra_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        extra = [t.text for t in sides.tokens[side] if t.mark == "extra"]
        if extra:
            findings.append(
                Finding(
                    "unbalanced-flip",
                    "warning",
                    f"{side} says its pole in more words ({_quote(extra)} beyond the "
                    f"flipped word): an extra word can carry its own meaning into the contrast",
                    "say both poles in the same number of words ('forgives' / 'resents'), or check the extra word "
                    "adds nothing",
                    side,
                    extra,
                )
            )
    return findings


def _length_findings(sides: _Sides) -> list[Finding]:
    n_pos, n_neg = len(sides.words("pos")), len(sides.words("neg"))
    longer, shorter = max(n_pos, n_neg), max(1, min(n_pos, n_neg))
    side = "pos" if n_pos > n_neg else "neg"
    if longer >= 2 * shorter and longer - shorter >= 8:
        severity: Severity = "error"
    elif longer >= 1.5 * shorter and longer - shorter >= 3:
        severity = "warning"
    else:
        return []
    return [
        Finding(
            "length-imbalance",
            severity,
            f"pos has {n_pos} and neg {n_neg} words: length differences "
            "usually mean content one side lacks, and length is the first nuisance axis to leak",
            "bring both sides within a few words of each other by mirroring, not padding",
            side,
        )
    ]


def _long_findings(sides: _Sides) -> list[Finding]:
    findings = []
    for side in SIDES:
        problems = []
        n_words = len(sides.words(side))
        if n_words > 20:
            problems.append(f"{n_words} words")
        sentences = 1 + sum(c.kind == "sentence" for c in sides.clauses[side][1:])
        if sentences > 1:
            problems.append(f"{sentences} sentences")
        if len(sides.clauses[side]) > 3:
            problems.append(f"{len(sides.clauses[side])} clauses")
        if problems:
            findings.append(
                Finding(
                    "long-persona",
                    "warning",
                    f"{side} is long ({', '.join(problems)}): short single sentences "
                    "steer better; every extra clause is one more thing that must mirror (seed rule 2)",
                    "cut to one short sentence that keeps only the conflict",
                    side,
                )
            )
    return findings


def _is_abstract_noun(word: str) -> bool:
    return word.endswith(ABSTRACT_SUFFIXES) or word in {
        "wisdom",
        "speed",
        "truth",
        "freedom",
        "knowledge",
        "growth",
        "beauty",
        "power",
        "order",
        "chaos",
        "justice",
        "mercy",
        "autonomy",
        "tradition",
        "progress",
        "efficiency",
        "quality",
        "excellence",
        "comfort",
        "safety",
        "security",
        "control",
        "harmony",
        "balance",
        "loyalty",
        "honesty",
        "integrity",
        "curiosity",
        "duty",
        "virtue",
        "principle",
        "principles",
        "ideals",
        "values",
        "self",
        "wellbeing",
        "care",
        "fairness",
    }


def _abstract_findings(sides: _Sides) -> list[Finding]:
    flagged = []
    for side in SIDES:
        tokens = sides.tokens[side]
        norms = [t.norm for t in tokens]
        pairs = list(itertools.pairwise(norms))
        stance = [w for w in norms if w in STANCE_WORDS] + [" ".join(p) for p in pairs if p in STANCE_PHRASES]
        conflict = any(tuple(norms[i : i + len(cue)]) == cue for cue in CONFLICT_CUES for i in range(len(norms)))
        hyphen_label = bool(re.fullmatch(r"[A-Za-z]+(?:-[A-Za-z]+)+", sides.text[side].strip())) and (
            any(w in ("over", "before", "first") for w in norms) or _is_abstract_noun(norms[-1])
        )
        if (stance and not conflict) or hyphen_label:
            flagged.append((side, stance or [sides.text[side].strip()]))
    if not flagged:
        return []
    which = " and ".join(side for side, _ in flagged)
    words = [w for _, ws in flagged for w in ws]
    return [
        Finding(
            "abstract-value",
            "warning",
            f"{which} state{'s' if len(flagged) == 1 else ''} a value "
            f"({_quote(words)}) instead of a conflict the model can act out; stated values tended to be reframed "
            "instrumentally ('I value X because it helps me serve') in-house (seed rule 5, N=3)",
            "describe what the persona does when two goods conflict: 'does A even when it means B' / "
            "'does B even when it means giving up A'",
            flagged[0][0] if len(flagged) == 1 else None,
            words,
        )
    ]


def _flip_findings(sites: list[list[DiffBlock]], inverted: bool) -> list[Finding]:
    allowed = 2 if inverted else 1
    if len(sites) <= allowed:
        return []
    places = [
        "/".join(
            " ".join(t.text for b in region for t in getattr(b, side) if t.mark == "flip") or "∅" for side in SIDES
        )
        for region in sites
    ]
    return [
        Finding(
            "extra-flip",
            "warning",
            f"the pole flips in {len(sites)} places ({'; '.join(places)}): each independent "
            "flip is a trait of its own, and the vector learns their mix",
            "flip one thing; split bundled traits into separate pairs",
            None,
            [p for p in places],
        )
    ]


def _n_words(text: str) -> str:
    n = len(text.split())
    return f"{n} word" + ("" if n == 1 else "s")


def _form_findings(sides: _Sides) -> list[Finding]:
    forms = {side: persona_form(sides.text[side]) for side in SIDES}
    if forms["pos"] == forms["neg"]:
        return []
    return [
        Finding(
            "form-mismatch",
            "warning",
            f"pos reads as {forms['pos']} ({_n_words(sides.text['pos'])}) and "
            f"neg as {forms['neg']} ({_n_words(sides.text['neg'])}); a template fits one form "
            "('a {persona} person' vs 'someone who {persona}')",
            "write both sides in the same form and of similar length",
            None,
        )
    ]


def lint_pair(pos: str, neg: str, pair_id: str | None = None, where: str | None = None) -> LintReport:
    """Run the mirror test on one pair. ``report.ok`` is False when any finding is an error."""
    sides = _Sides(pos.strip(), neg.strip())
    blocks = _diff(sides)
    if pos.strip().lower() == neg.strip().lower():
        for block in blocks:
            for token in block.pos + block.neg:
                token.mark = "same"
        finding = Finding(
            "identical",
            "error",
            "pos and neg are the same text: there is no direction to learn",
            "write the opposite pole on the neg side",
        )
        return LintReport(pos, neg, [finding], blocks, pair_id, where)
    unmirrored = _unmirrored_clauses(sides)
    for side in SIDES:
        for clause in unmirrored[side]:
            for token in clause.tokens:
                token.in_unmirrored_clause = True
    inverted = _inverts_priority(sides)
    sites = _mark_tokens(sides, blocks, inverted)
    findings = (
        _negation_findings(sides)
        + _absence_findings(sides)
        + _pole_in_other_findings(sides)
        + _clause_findings(unmirrored)
        + _content_findings(sides)
        + _extra_findings(sides)
        + _length_findings(sides)
        + _long_findings(sides)
        + _abstract_findings(sides)
        + _flip_findings(sites, inverted)
        + _form_findings(sides)
    )
    findings.sort(key=lambda f: f.severity != "error")
    return LintReport(pos, neg, findings, blocks, pair_id, where)


def lint_pairs(pairs: Sequence[PersonaPair]) -> list[LintReport]:
    """The mirror test for each pair (see :func:`lint_pair`)."""
    return [lint_pair(p.pos, p.neg, p.id, p.where) for p in pairs]


# --------------------------------------------------------------------------------------------- display
MARKS = {"flip": ("[", "]"), "unmirrored": ("<", ">"), "extra": ("+", ""), "moved": ("~", ""), "negation": ("!", "")}
LEGEND = "[flipped]  <unmirrored>  +extra word of a flip  ~moved (same word, other place)  !negation"


def _marked(token: Token) -> str:
    before, after = MARKS.get(token.mark, ("", ""))
    return f"{before}{token.text}{after}"


def format_diff(blocks: Sequence[DiffBlock], width: int = 110) -> str:
    """The two personas one above the other, aligned block by block, flipped and unmirrored words marked."""
    columns = []
    for block in blocks:
        if block.op == "equal":
            for a, b in zip(block.pos, block.neg):
                text_a, text_b = _marked(a), _marked(b)
                columns.append((text_a, text_b))
        else:
            columns.append((" ".join(_marked(t) for t in block.pos), " ".join(_marked(t) for t in block.neg)))
    lines, row_pos, row_neg = [], "pos  ", "neg  "
    for text_a, text_b in columns:
        cell = max(len(text_a), len(text_b))
        if len(row_pos) + cell > width and row_pos.strip() != "pos":
            lines += [row_pos.rstrip(), row_neg.rstrip(), ""]
            row_pos, row_neg = "     ", "     "
        row_pos += text_a.ljust(cell) + "  "
        row_neg += text_b.ljust(cell) + "  "
    lines += [row_pos.rstrip(), row_neg.rstrip()]
    return "\n".join(lines)


def format_report(report: LintReport) -> str:
    """Human-readable lint of one pair: status line, aligned diff and a findings table."""
    status = "FAIL" if report.errors else ("WARN" if report.findings else "PASS")
    name = report.id or "pair"
    head = f"{status}  {name}" + (f"  ({report.where})" if report.where else "")
    head += f"  — {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    lines = [head, format_diff(report.diff)]
    for f in report.findings:
        lines.append(f"  {f.severity:<7}  {f.rule:<18}  {f.message}")
        lines.append(f"  {'':<7}  {'':<18}  fix: {f.fix}")
    if report.second_opinion is not None:
        opinion = report.second_opinion
        lines.append(
            f"  second opinion ({opinion.get('source')}): {opinion.get('verdict')} — "
            f"{opinion.get('reason') or ''}".rstrip(" —")
        )
    return "\n".join(lines)


def format_reports(reports: Sequence[LintReport]) -> str:
    """All reports, a legend and a summary line."""
    failed = sum(bool(r.errors) for r in reports)
    warned = sum(bool(r.warnings) and not r.errors for r in reports)
    body = "\n\n".join(format_report(r) for r in reports)
    summary = f"{len(reports)} pair(s): {failed} fail, {warned} warn, {len(reports) - failed - warned} pass"
    return f"{body}\n\nlegend: {LEGEND}\n{summary}"
