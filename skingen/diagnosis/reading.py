"""Reading a diagnosis out of free text: which taxonomy condition a model's answer picks, and why.

A VLM answers in hedged prose, markdown lists and ranked differentials ("I cannot rule out melanoma, but it is
probably a seborrheic keratosis"). Taking the first condition named would read that as melanoma. This module is
a transparent rule-based reader (no model), in the spirit of NegEx (Chapman et al. 2001): condition names are
found, then cue phrases around them say whether each is the pick, merely considered, or ruled out.

1. **Names.** Leftmost-longest match over the taxonomy's names (ids, display names, synonyms) *and* a list of
   known conditions outside the taxonomy (``other_conditions`` in the taxonomy YAML). A longer name wins, so
   "seborrheic dermatitis" (outside) is never read as the "dermatitis" (eczema) inside it: a specific name is
   never collapsed into a broader class. A name that neither list holds is read as the listed name it contains
   ("chronic hand eczema" → eczema): site, severity and course words do not change the condition. Misspellings
   ("psoriasys") are matched only when the text names nothing exactly.
2. **Cues.** A cue phrase acts *forward* on the names after it in its clause, up to the next cue ("no sign
   of melanoma, BCC or SCC"), and some act *backward* on the names before it ("psoriasis is unlikely").
   Clauses end at ``. ; ! ?``, line breaks and contrast words (but, however, although…). A negation right before
   another cue turns it into a negation ("not consistent with"). Longer cues win ("cannot rule out" is not
   "not"). A line label ("Diagnosis:", "Differential:", "## Reasoning") sets the default for the names under
   it, until the next label.
3. **Pick.** Each name gets a status, strongest first: ``most_likely`` (most likely, diagnosis:, favour),
   ``likely`` (probably, consistent with, looks like), ``named`` (no cue), ``considered`` (differential,
   possible, cannot rule out, less likely), ``aside`` (under a Reasoning: label); ``negated`` names (not, no sign
   of, without, unlikely, ruled out, rather than) are dropped. The pick is the strongest, the earliest on a
   tie. A pick outside the taxonomy is ``unknown``; only names in the taxonomy follow it in the ranking.

Every name found is kept as a :class:`Mention` (the words, where they are, the status and the cue that set it),
so a result can be explained (:meth:`Reading.explain`) and stored with the diagnosis.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from formats.taxonomy import UNKNOWN, Taxonomy


class Status(StrEnum):
    """What the text says about a condition it names; the order is the strength of the claim."""

    MOST_LIKELY = "most_likely"
    LIKELY = "likely"
    NAMED = "named"
    CONSIDERED = "considered"
    ASIDE = "aside"
    NEGATED = "negated"


_STRENGTH = {
    Status.MOST_LIKELY: 5,
    Status.LIKELY: 4,
    Status.NAMED: 3,
    Status.CONSIDERED: 2,
    Status.ASIDE: 1,
}

# Shorthands for the cue and label tables.
M, L, C, A, N = Status.MOST_LIKELY, Status.LIKELY, Status.CONSIDERED, Status.ASIDE, Status.NEGATED
# Cue phrase → (effect on the names after it, effect on the names before it). Words as the tokenizer writes
# them (lower case, apostrophes kept); the longest phrase at a position wins.
_CUES: dict[str, tuple[Status | None, Status | None]] = {
    # negation and exclusion
    **dict.fromkeys(
        ["not", "no", "non", "without", "nor", "neither", "never", "isn't", "aren't", "wasn't", "doesn't",
         "don't", "didn't", "cannot be", "can't be", "no sign of", "no signs of", "no evidence of",
         "no features of", "no suggestion of", "no indication of", "absence of", "negative for", "free of",
         "rules out", "excluding", "unlike", "as opposed to", "inconsistent with", "argues against",
         "against", "don't think", "do not think", "instead of", "exclude", "we can exclude", "none", "none of",
         "nothing suggests"],
        (N, None),
    ),
    **dict.fromkeys(
        ["unlikely", "is unlikely", "seems unlikely", "ruled out", "has been ruled out", "was ruled out",
         "excluded", "is excluded", "can be excluded", "can be ruled out", "absent", "is absent",
         "very unlikely", "much less likely"],
        (N, N),
    ),
    "rather than": (N, L),  # comparisons act both ways even with names on both sides (_TWO_SIDED)
    # considered: still in the differential, not the pick
    **dict.fromkeys(
        ["cannot rule out", "can't rule out", "can not rule out", "could not rule out", "couldn't rule out",
         "cannot exclude", "can't exclude", "could not exclude", "rule out", "to rule out", "to exclude",
         "must exclude", "should exclude", "need to exclude", "possible", "possibly", "possibility of",
         "differential", "differential diagnosis", "differential diagnoses", "differentials",
         "differential includes", "differential diagnosis includes", "ddx", "consider", "also consider",
         "considered", "could be", "could also be", "may be", "might be", "may also be", "alternatively",
         "alternative", "other possibilities", "other possibilities include", "or possibly",
         "suspicious for", "concerning for", "worrisome for", "also possible", "less probable", "less likely",
         "is less likely", "cannot be ruled out", "can't be ruled out", "could not be ruled out",
         "cannot be excluded", "can't be excluded", "not excluded", "not ruled out", "should be ruled out",
         "must be ruled out", "needs to be ruled out", "to be ruled out", "is possible", "is also possible",
         "remains possible", "is a possibility"],
        (C, C),
    ),
    "less likely than": (L, C),
    "more likely than": (C, L),
    # the pick
    **dict.fromkeys(
        ["likely", "probably", "probable", "consistent with", "compatible with", "in keeping with",
         "suggestive of", "suggests", "suggesting", "looks like", "look like", "looks most like", "resembles",
         "appears to be", "appears", "seems to be", "seems like", "typical of", "characteristic of",
         "indicative of", "i think", "i believe", "i suspect", "suspect", "is likely", "is probable",
         "is probably", "in favour of", "in favor of"],
        (L, L),
    ),
    **dict.fromkeys(
        ["most likely", "most probably", "most consistent with", "most suggestive of", "best fits",
         "best fit", "fits best", "best explained by", "leading diagnosis", "working diagnosis",
         "final diagnosis", "primary diagnosis", "top diagnosis", "most likely diagnosis", "my impression",
         "overall impression", "no doubt", "without doubt", "without a doubt", "definitely", "favor",
         "favour", "favored", "favoured", "i favor", "i favour", "the diagnosis is", "diagnosis is",
         "is the most likely", "is most likely", "is favored", "is favoured", "is the diagnosis",
         "most in keeping with", "more typical of", "more consistent with", "more suggestive of",
         "more in keeping with"],
        (M, M),
    ),
}  # fmt: skip
# A line label ("Differential diagnosis:", "## Reasoning") sets the status of the names under it, by the
# first of these words it contains; a label with none of them resets to plain naming.
_LABELS: tuple[tuple[tuple[str, ...], Status], ...] = (
    (("unlikely", "excluded", "ruled out"), N),
    (("differential", "differentials", "ddx", "less likely", "alternative", "alternatives", "possibilities",
      "consider"), C),
    (("reasoning", "rationale", "explanation", "findings", "features", "description", "observations",
      "recommendation", "recommendations", "next steps", "note", "notes", "why", "morphology", "advice"), A),
    (("diagnosis", "impression", "assessment", "conclusion", "most likely", "answer", "summary"), M),
)  # fmt: skip
_TWO_SIDED = frozenset({"rather than", "less likely than", "more likely than"})
_CONTRAST = frozenset({"but", "however", "although", "though", "whereas", "nevertheless", "nonetheless"})
_NEGATION_REACH = 2  # "not" reaches a cue up to 2 words later: "does not look like", "not typical of"
_FUZZY_CUTOFF = 0.88  # "psoriasys" → psoriasis (0.89); "dermatosis" ↛ dermatitis (0.80)
_FUZZY_MIN_LENGTH = 5  # short names (scc, bcc, mole) only match exactly
_LABEL_WORDS = 6  # a line label is at most this many words before its colon

_TOKEN = re.compile(
    r"(?P<word>[a-z0-9]+(?:['’][a-z]+)?)|(?P<break>[.;!?]|\n)|(?P<colon>:)|(?P<comma>,)", re.I
)


@dataclass(frozen=True)
class Mention:
    """A condition named in the text: ``condition`` is a taxonomy id, or None for a known condition outside it.

    ``start``/``end`` are character offsets in the text, ``status`` what the text says about it, ``cue`` the
    phrase (or ``"label: …"``) that decided the status (None: named without a cue), ``exact`` False for a
    misspelling matched approximately.
    """

    text: str
    start: int
    end: int
    name: str
    condition: str | None
    status: Status
    cue: str | None
    exact: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "name": self.name,
            "condition": self.condition,
            "status": self.status.value,
            "cue": self.cue,
            "exact": self.exact,
        }


@dataclass(frozen=True)
class Reading:
    """The condition a text picks (a taxonomy id or ``unknown``), its ranking, and the mentions behind it."""

    condition: str
    ranked: tuple[str, ...]
    mentions: tuple[Mention, ...]
    pick: Mention | None  # the mention the pick came from (None: nothing named that is not ruled out)

    def explain(self) -> str:
        """One line per mention and the verdict, for debugging a mapping."""
        lines = [
            f"{m.text!r} [{m.start}:{m.end}] → {m.condition or 'outside the taxonomy'}: {m.status.value}"
            + (f" (cue {m.cue!r})" if m.cue else "")
            + ("" if m.exact else " (approximate)")
            for m in self.mentions
        ]
        return "\n".join([*lines, f"→ {self.condition}"])


@dataclass(frozen=True)
class _Token:
    text: str
    kind: str  # word, break, colon, comma
    start: int
    end: int


def _tokens(text: str) -> list[_Token]:
    found = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "word"
        word = match.group().lower().replace("’", "'")
        if kind == "word":
            word = word.replace(".", "")  # vs. e.g. i.e. are words, not clause ends
        found.append(_Token(word, kind, match.start(), match.end()))
    return found


def _name_table(taxonomy: Taxonomy) -> dict[tuple[str, ...], str | None]:
    """Every name → its taxonomy id (None: a known condition outside the taxonomy); the taxonomy wins a tie."""
    table: dict[tuple[str, ...], str | None] = {}
    for name, condition in taxonomy.names():
        table.setdefault(_phrase(name), condition)
    for name in taxonomy.other_conditions:
        table.setdefault(_phrase(name), None)
    return table


def _phrase(name: str) -> tuple[str, ...]:
    return tuple(t.text for t in _tokens(name) if t.kind == "word")


_CUE_TABLE = {_phrase(cue): effects for cue, effects in _CUES.items()}
_LONGEST_CUE = max(map(len, _CUE_TABLE))


@dataclass(frozen=True)
class _Cue:
    phrase: str
    end: int  # the token after it
    forward: Status | None  # its effect on the names after it
    backward: Status | None  # … and on the names before it


@dataclass
class _Found:
    first: int  # token indices, end exclusive
    stop: int
    name: str
    condition: str | None = None
    exact: bool = True


def read_diagnosis(text: str, taxonomy: Taxonomy) -> Reading:
    """Read ``text`` (a model's answer) onto ``taxonomy``; see the module docstring for the rules."""
    # 1. Words, breaks and names (exact, else approximate)
    tokens = _tokens(text)
    names = _name_table(taxonomy)
    found = _exact_names(tokens, names) or _approximate_names(tokens, names)
    taken = {i for f in found for i in range(f.first, f.stop)}
    # 2. Cue phrases among the other words, line labels, and clause numbers
    cues = _cues(tokens, taken)
    labels = _labels(tokens, taken)
    clause = _clauses(tokens, cues, {f.first for f in found})
    # 3. A status for each name
    mentions = tuple(
        Mention(
            text=text[tokens[f.first].start : tokens[f.stop - 1].end],
            start=tokens[f.first].start,
            end=tokens[f.stop - 1].end,
            name=f.name,
            condition=f.condition,
            exact=f.exact,
            **_status(f, cues, labels, clause, {g.first for g in found}),
        )
        for f in found
    )
    # 4. The pick and the ranking
    return _rank(mentions)


def _exact_names(tokens: list[_Token], names: dict[tuple[str, ...], str | None]) -> list[_Found]:
    longest = max(map(len, names), default=0)
    found: list[_Found] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            phrase = tuple(t.text for t in tokens[i : i + n])
            if phrase in names and all(t.kind == "word" for t in tokens[i : i + n]):
                found.append(_Found(i, i + n, " ".join(phrase), names[phrase]))
                i += n
                break
        else:
            i += 1
    return found


def _approximate_names(tokens: list[_Token], names: dict[tuple[str, ...], str | None]) -> list[_Found]:
    """Close misspellings of taxonomy names (only where the text names nothing exactly)."""
    found: list[_Found] = []
    taken: set[int] = set()
    for phrase, condition in sorted(names.items(), key=lambda item: -len(item[0])):
        target = " ".join(phrase)
        if condition is None or len(target) < _FUZZY_MIN_LENGTH:
            continue
        for i in range(len(tokens) - len(phrase) + 1):
            window = tokens[i : i + len(phrase)]
            if any(t.kind != "word" for t in window) or taken.intersection(range(i, i + len(phrase))):
                continue
            candidate = " ".join(t.text for t in window)
            if difflib.SequenceMatcher(None, candidate, target).ratio() >= _FUZZY_CUTOFF:
                found.append(_Found(i, i + len(phrase), target, condition, exact=False))
                taken.update(range(i, i + len(phrase)))
    return sorted(found, key=lambda f: f.first)


def _cues(tokens: list[_Token], taken: set[int]) -> dict[int, _Cue]:
    """Cue phrases by their first token."""
    cues: dict[int, _Cue] = {}
    i = 0
    while i < len(tokens):
        for n in range(min(_LONGEST_CUE, len(tokens) - i), 0, -1):
            window = tokens[i : i + n]
            phrase = tuple(t.text for t in window)
            free = all(t.kind == "word" for t in window) and not taken.intersection(range(i, i + n))
            if phrase in _CUE_TABLE and free:
                cues[i] = _Cue(" ".join(phrase), i + n, *_CUE_TABLE[phrase])
                i += n
                break
        else:
            i += 1
    # A negation shortly before another cue negates it: "not consistent with", "does not look like".
    for before, after in pairwise(sorted(cues)):
        if before not in cues:  # absorbed into the negation before it
            continue
        negation, later = cues[before], cues[after]
        near = after - negation.end <= _NEGATION_REACH and all(
            tokens[j].kind == "word" and j not in taken for j in range(negation.end, after)
        )
        if negation.forward is N and later.forward is not N and near:
            del cues[after]
            cues[before] = _Cue(f"{negation.phrase} … {later.phrase}", later.end, N, N)
    return cues


def _labels(tokens: list[_Token], taken: set[int]) -> list[tuple[str, Status] | None]:
    """Per token, the line label in force ("Differential:" → considered …), None before the first label.

    A label is the start of a line (up to six words, no condition name) ending in a colon, or a whole line
    that is a markdown heading or bold; it holds until the next label.
    """
    in_force: list[tuple[str, Status] | None] = []
    current: tuple[str, Status] | None = None
    line_start = 0
    for i, token in enumerate(tokens):
        if i == line_start:
            label = _label_at(tokens, i, taken)
            if label is not None:
                current = label
        in_force.append(current)
        if token.kind == "break" and token.text == "\n":
            line_start = i + 1
    return in_force


def _label_at(tokens: list[_Token], first: int, taken: set[int]) -> tuple[str, Status] | None:
    end = first
    while end < len(tokens) and tokens[end].kind == "word" and end - first < _LABEL_WORDS:
        end += 1
    if end == first or end >= len(tokens) or tokens[end].kind != "colon":
        return None
    if taken.intersection(range(first, end)):
        return None  # "Psoriasis: silvery plaques" lists a condition, it does not label a section
    words = " ".join(t.text for t in tokens[first:end])
    padded = f" {words} "
    for keys, status in _LABELS:
        if any(f" {key} " in padded for key in keys):
            return words, status
    return words, Status.NAMED


def _clauses(tokens: list[_Token], cues: dict[int, _Cue], names: set[int]) -> list[int]:
    """Per token, its clause number: clauses end at breaks and contrast words, and a negation's clause at the
    first comma with no name between it and the negation ("no scale, psoriasis" does not negate psoriasis;
    "no sign of melanoma, BCC or SCC" negates all three)."""
    negation_open = False
    number, numbers = 0, []
    for i, token in enumerate(tokens):
        if token.kind == "break" or token.text in _CONTRAST or (token.kind == "comma" and negation_open):
            number += 1
            negation_open = False
        if i in cues:
            negation_open = cues[i].forward is N
        elif i in names:
            negation_open = False
        numbers.append(number)
    return numbers


def _status(
    found: _Found,
    cues: dict[int, _Cue],
    labels: list[tuple[str, Status] | None],
    clause: list[int],
    names: set[int],
) -> dict[str, object]:
    """The status of one name (``names``: where every name starts): a negation from either side wins, then the
    cue before it, then the cue after it, then the line label; no cue → named."""
    before = [s for s in cues if s < found.first and clause[s] == clause[found.first]]
    after = [s for s in cues if s >= found.stop and clause[s] == clause[found.first]]
    forward = backward = None
    if before:
        cue = cues[max(before)]
        if cue.forward is not None:
            forward = (cue.phrase, cue.forward)
    if after:
        cue = cues[min(after)]
        # "psoriasis is unlikely" but not "non-melanoma skin cancer, probably a BCC": a cue that has a name
        # after it in its clause acts forward only, unless it compares two ("A rather than B").
        named_after = any(clause[s] == clause[cue.end - 1] for s in names if s >= cue.end)
        if cue.backward is not None and (cue.phrase in _TWO_SIDED or not named_after):
            backward = (cue.phrase, cue.backward)
    decided = [d for d in (forward, backward) if d is not None]
    negation = next((d for d in decided if d[1] is N), None)
    if negation or decided:
        phrase, status = negation or decided[0]
        return {"status": status, "cue": phrase}
    label = labels[found.first]
    if label is not None and label[1] is not Status.NAMED:
        return {"status": label[1], "cue": f"label: {label[0]}"}
    return {"status": Status.NAMED, "cue": None}


def _rank(mentions: tuple[Mention, ...]) -> Reading:
    """The pick (the strongest mention, the earliest on a tie) and the ranking: the pick (``unknown`` when it is
    outside the taxonomy), then the other taxonomy conditions by strength and position."""
    order = sorted((m for m in mentions if m.status is not N), key=lambda m: (-_STRENGTH[m.status], m.start))
    outside = [UNKNOWN] if order and order[0].condition is None else []
    ranked = tuple(dict.fromkeys(outside + [m.condition for m in order if m.condition is not None]))
    return Reading(
        condition=ranked[0] if ranked else UNKNOWN,
        ranked=ranked,
        mentions=mentions,
        pick=order[0] if order else None,
    )
