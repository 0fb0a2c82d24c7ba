"""Text processing for the lexical metrics, standard library only.

Two tokenizers, each reproducing the convention of the reference the metric is known by:

- ``word_tokenize``: Penn Treebank conventions, as NLTK's ``word_tokenize`` applies them
  (BLEU and F1 in PromptLab 0.1.x were computed on those tokens). Sentences are split
  by a heuristic instead of NLTK's trained Punkt model, which would be a data download.
- ``rouge_tokenize``: the convention of Google's ``rouge-score`` (lowercase, runs of
  ``[a-z0-9]``, Porter stems of words longer than three letters).

``porter_stem`` is the Porter (1980) stemmer with the refinements NLTK applies in its
default mode, which is the stemmer ``rouge-score`` uses; tests compare all three with
the reference packages.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Callable, Dict, List, Sequence, Tuple

# --- sentences ---------------------------------------------------------------

# A sentence ends at . ! ? (and closing quotes or brackets) followed by white space and
# a capital letter, digit or opening quote; not after a title or a single initial.
_SENTENCE_END = re.compile(r"""(?<=[.!?])["')\]\u201d\u2019]*\s+(?=["'(\[\u201c\u2018]?[A-Z0-9])""")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc inc ltd co corp no fig e.g i.e u.s a.m p.m".split()
)


def split_sentences(text: str) -> List[str]:
    """``text`` cut into sentences (a heuristic stand-in for NLTK's Punkt)."""
    sentences: List[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rstrip("\"')]\u201d\u2019")
        last_word = before.rsplit(None, 1)[-1] if before.split() else ""
        word = last_word.rstrip(".!?").lower()
        if before.endswith(".") and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue  # "Dr. Smith", "J. Smith": not a sentence end
        end = match.start() + len(match.group().rstrip())
        sentences.append(text[start:end])
        start = match.end()
    sentences.append(text[start:])
    return [s for s in sentences if s.strip()]


# --- Penn Treebank words -------------------------------------------------------

# Each step is (pattern, replacement), applied in order to one sentence; spaces added
# around a piece make it a token of its own when the text is finally split.
_OPENING_QUOTES = [
    (re.compile(r"([\u00ab\u201c\u2018\u201e]|`+)"), r" \1 "),   # typographic and ` quotes
    (re.compile(r'^"'), "``"),                                    # " opening the sentence
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"""([ (\[{<])("|'')"""), r"\1 `` "),              # " after a space or bracket
    # A lone ' before a word, unless it starts a clitic ('re, 've, 'll, 'm, 't, 's, 'd, 'n).
    (re.compile(r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 "),
]
_PUNCTUATION = [
    # A period at the end, before any closing quotes or brackets.
    (re.compile(r"""([^.])(\.)([\])}>"'\u00bb\u201d\u2019 ]*)\s*$"""), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),                    # , and : but not 3,000 or 4:30
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),                          # ellipses
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile("[\u2012-\u2015]"), r" \g<0> "),                 # figure, en and em dashes
    (re.compile(r"""([^.])(\.)([\])}>"']*)\s*$"""), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),                          # a closing single quote
    (re.compile(r"[*]"), r" \g<0> "),
    (re.compile(r"[\]\[(){}<>]"), r" \g<0> "),                    # brackets
    (re.compile(r"--"), r" -- "),
]
_CLOSING_QUOTES = [
    (re.compile("([\u00bb\u201d\u2019])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    # Clitics split off the word before them: John's -> John 's, don't -> do n't.
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
# Words the Treebank writes as two tokens: cannot -> can not, gonna -> gon na, ...
_TWO_WORDS = [
    re.compile(r"(?i)\b(can)(not)\b"),
    re.compile(r"(?i)\b(d)('ye)\b"),
    re.compile(r"(?i)\b(gim)(me)\b"),
    re.compile(r"(?i)\b(gon)(na)\b"),
    re.compile(r"(?i)\b(got)(ta)\b"),
    re.compile(r"(?i)\b(lem)(me)\b"),
    re.compile(r"(?i)\b(more)('n)\b"),
    re.compile(r"(?i)\b(wan)(na)(?=\s)"),
    re.compile(r"(?i) ('t)(is)\b"),
    re.compile(r"(?i) ('t)(was)\b"),
]


def _sentence_words(sentence: str) -> List[str]:
    text = sentence
    for pattern, replacement in _OPENING_QUOTES + _PUNCTUATION:
        text = pattern.sub(replacement, text)
    text = f" {text} "  # so that clitic patterns see a space at both ends
    for pattern, replacement in _CLOSING_QUOTES:
        text = pattern.sub(replacement, text)
    for pattern in _TWO_WORDS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def word_tokenize(text: str) -> List[str]:
    """The words and punctuation of ``text`` by Penn Treebank conventions, sentence by sentence."""
    return [word for sentence in split_sentences(text) for word in _sentence_words(sentence)]


# --- Porter stemmer -----------------------------------------------------------

_VOWELS = frozenset("aeiou")
# Irregular forms mapped before any rule (NLTK's default mode).
_IRREGULAR: Dict[str, str] = {
    "sky": "sky", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie",
    "news": "news", "innings": "inning", "inning": "inning", "outings": "outing",
    "outing": "outing", "cannings": "canning", "canning": "canning", "howe": "howe",
    "proceed": "proceed", "exceed": "exceed", "succeed": "succeed",
}


def _consonants(word: str) -> List[bool]:
    """Per letter, whether Porter calls it a consonant (y is one unless after a consonant)."""
    flags: List[bool] = []
    for i, letter in enumerate(word):
        if letter in _VOWELS:
            flags.append(False)
        elif letter == "y":
            flags.append(i == 0 or not flags[i - 1])
        else:
            flags.append(True)
    return flags


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    flags = _consonants(stem)
    return sum(1 for a, b in pairwise(flags) if not a and b)


def _has_vowel(stem: str) -> bool:
    return not all(_consonants(stem))


def _double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _consonants(word)[-1]


def _cvc(word: str) -> bool:
    """Consonant-vowel-consonant at the end, the last not w, x or y (or a two-letter vc word)."""
    flags = _consonants(word)
    if len(word) >= 3 and flags[-3:] == [True, False, True] and word[-1] not in "wxy":
        return True
    return len(word) == 2 and flags == [False, True]


def _m_positive(stem: str) -> bool:
    return _measure(stem) > 0


def _m_above_1(stem: str) -> bool:
    return _measure(stem) > 1


def _first_suffix(word: str, rules: Sequence[Tuple[str, str, Callable[[str], bool]]]) -> str:
    """Apply the rule of the first listed suffix ``word`` ends with, if its stem qualifies.

    Rules are (suffix, replacement, condition on the stem); only the first suffix that
    matches is considered, as in Porter's paper.
    """
    for suffix, replacement, condition in rules:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            return stem + replacement if condition(stem) else word
    return word


_STEP2 = [
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
    ("izer", "ize"), ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"),
    ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
    ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
    ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"), ("fulli", "ful"),
]
_STEP3 = [
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"),
    ("ful", ""), ("ness", ""),
]
_STEP4 = [
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
    "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
]


def _step1(word: str) -> str:
    # 1a: plurals.
    if word.endswith("ies") and len(word) == 4:
        word = word[:-1]                       # lies -> lie
    elif word.endswith("sses") or word.endswith("ies"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    # 1b: past tenses and gerunds.
    if word.endswith("ied"):
        word = word[:-1] if len(word) == 4 else word[:-2]   # died -> die, cried -> cri
    elif word.endswith("eed"):
        if _m_positive(word[:-3]):
            word = word[:-1]
    else:
        for suffix in ("ed", "ing"):
            stem = word[: len(word) - len(suffix)]
            if word.endswith(suffix) and _has_vowel(stem):
                if stem.endswith(("at", "bl", "iz")):
                    word = stem + "e"
                elif _double_consonant(stem):
                    word = stem if stem[-1] in "lsz" else stem[:-1]
                elif _measure(stem) == 1 and _cvc(stem):
                    word = stem + "e"
                else:
                    word = stem
                break
    # 1c: y -> i after a consonant that is not the first letter.
    if word.endswith("y") and len(word) > 2 and _consonants(word[:-1])[-1]:
        word = word[:-1] + "i"
    return word


def _step2(word: str) -> str:
    if word.endswith("alli") and _m_positive(word[:-4]):
        return _step2(word[:-2])               # -alli -> -al, then step 2 again
    if word.endswith("logi"):
        return word[:-1] if _m_positive(word[:-3]) else word
    return _first_suffix(word, [(s, r, _m_positive) for s, r in _STEP2])


def _step4(word: str) -> str:
    for suffix in _STEP4:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            keep = suffix != "ion" or stem.endswith(("s", "t"))
            return stem if keep and _m_above_1(stem) else word
    return word


def _step5(word: str) -> str:
    if word.endswith("e"):
        stem = word[:-1]
        m = _measure(stem)
        if m > 1 or (m == 1 and not _cvc(stem)):
            word = stem
    if word.endswith("ll") and _m_above_1(word[:-1]):
        word = word[:-1]
    return word


def porter_stem(word: str) -> str:
    """The Porter stem of ``word`` (lowercased), as NLTK's default PorterStemmer gives it."""
    word = word.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 2:
        return word
    word = _step1(word)
    word = _step2(word)
    word = _first_suffix(word, [(s, r, _m_positive) for s, r in _STEP3])
    word = _step4(word)
    return _step5(word)


# --- ROUGE tokens -------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokenize(text: str, stem: bool = True) -> List[str]:
    """Lowercased runs of ``[a-z0-9]``, words longer than three letters stemmed."""
    words = _NON_ALNUM.sub(" ", text.lower()).split()
    if stem:
        words = [porter_stem(w) if len(w) > 3 else w for w in words]
    # A stem is made of the word's own letters, so it is never empty or invalid.
    return words
