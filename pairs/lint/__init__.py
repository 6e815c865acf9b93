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

The package splits by concern: :mod:`~wsteer.pairs.lint.words` (vocabularies, tokens, stems, opposites),
:mod:`~wsteer.pairs.lint.clauses`, :mod:`~wsteer.pairs.lint.mirror` (the word alignment and marks),
:mod:`~wsteer.pairs.lint.rules` (one function per rule), :mod:`~wsteer.pairs.lint.report` (findings, the report
and its rendering) and :mod:`~wsteer.pairs.lint.check` (:func:`lint_pair`, which runs them all, and the
command's :class:`LintConfig`).

These are heuristics over words, not a parser: they catch the common failures cheaply and say why, and a second
opinion (:mod:`wsteer.pairs.second_opinion`) can ask a model the same question.
"""

from wsteer.pairs.lint.check import LintConfig, lint_pair, lint_pairs
from wsteer.pairs.lint.clauses import Clause, split_clauses
from wsteer.pairs.lint.report import (
    LEGEND,
    MARKS,
    DiffBlock,
    Finding,
    LintReport,
    Severity,
    format_diff,
    format_report,
    format_reports,
)
from wsteer.pairs.lint.words import SIDES, Side, Token, is_antonym, same_word, stem, tokenize

__all__ = [
    "LEGEND",
    "MARKS",
    "SIDES",
    "Clause",
    "DiffBlock",
    "Finding",
    "LintConfig",
    "LintReport",
    "Severity",
    "Side",
    "Token",
    "format_diff",
    "format_report",
    "format_reports",
    "is_antonym",
    "lint_pair",
    "lint_pairs",
    "same_word",
    "split_clauses",
    "stem",
    "tokenize",
]
