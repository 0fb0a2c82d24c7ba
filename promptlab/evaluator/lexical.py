"""Metrics computed from the words of the response and the reference: no model calls.

``bleu`` and ``rouge`` are written here from their published definitions (Papineni et
al. 2002 with Chen and Cherry's smoothing 4; Lin 2004); the tests hold them to NLTK's
``sentence_bleu`` and Google's ``rouge-score`` on a fixed set of sentence pairs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Dict, List, Sequence, Tuple

from promptlab.evaluator._text import rouge_tokenize, split_sentences, word_tokenize
from promptlab.evaluator.evaluator import Evaluator, require

# --- pure functions -------------------------------------------------------------


def _ngrams(tokens: Sequence[str], n: int) -> Counter[Tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(reference: Sequence[str], hypothesis: Sequence[str], max_n: int = 4,
         k: float = 5.0) -> float:
    """Sentence BLEU of ``hypothesis`` against one ``reference`` (token lists), 0..1.

    Uniform weights over 1..``max_n``-grams, clipped n-gram precisions, the brevity
    penalty, and smoothing 4 of Chen and Cherry (2014) for orders without a match: the
    i-th such order counts ln(len)/(k * 2^i) matches, so short hypotheses are not
    scored 0 for lacking a 4-gram. As NLTK does: 0 when no word matches, and a
    one-word hypothesis skips the orders it cannot have.
    """
    hyp_len, ref_len = len(hypothesis), len(reference)
    log_precisions: List[float] = []
    unmatched = 0
    for n in range(1, max_n + 1):
        hyp_ngrams, ref_ngrams = _ngrams(hypothesis, n), _ngrams(reference, n)
        matches = sum(min(count, ref_ngrams[gram]) for gram, count in hyp_ngrams.items())
        total = max(1, hyp_len - n + 1)
        if n == 1 and matches == 0:
            return 0.0
        if matches:
            log_precisions.append(math.log(matches / total))
        elif hyp_len > 1:
            unmatched += 1
            log_precisions.append(math.log(math.log(hyp_len) / (k * 2 ** unmatched) / total))
        # else: a one-word hypothesis has no n-grams of this order; NLTK leaves it out.
    if hyp_len > ref_len:
        brevity = 1.0
    else:
        brevity = math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(math.fsum(p / max_n for p in log_precisions))


def _prf(overlap: float, predicted: int, target: int) -> Tuple[float, float, float]:
    precision = overlap / max(predicted, 1)
    recall = overlap / max(target, 1)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


def _lcs_table(a: Sequence[str], b: Sequence[str]) -> List[List[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        row, above = table[i], table[i - 1]
        for j, y in enumerate(b, 1):
            row[j] = above[j - 1] + 1 if x == y else max(above[j], row[j - 1])
    return table


def _lcs_positions(a: Sequence[str], b: Sequence[str]) -> List[int]:
    """Positions in ``a`` of one longest common subsequence with ``b`` (ties go to ``a``'s end)."""
    table = _lcs_table(a, b)
    i, j, positions = len(a), len(b), []
    while i and j:
        if a[i - 1] == b[j - 1]:
            positions.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return positions[::-1]


def _rouge_lsum(target: str, prediction: str, stem: bool) -> Tuple[float, float, float]:
    """Summary-level ROUGE-L: each target line against the union of its LCS with every
    prediction line, each word counted at most as often as both texts hold it."""
    targets = [rouge_tokenize(s, stem) for s in target.split("\n") if s]
    predictions = [rouge_tokenize(s, stem) for s in prediction.split("\n") if s]
    target_len, prediction_len = sum(map(len, targets)), sum(map(len, predictions))
    if not target_len or not prediction_len:
        return 0.0, 0.0, 0.0
    target_left = Counter(w for s in targets for w in s)
    prediction_left = Counter(w for s in predictions for w in s)
    hits = 0
    for sentence in targets:
        union = sorted({p for other in predictions for p in _lcs_positions(sentence, other)})
        for word in (sentence[p] for p in union):
            if target_left[word] > 0 and prediction_left[word] > 0:
                hits += 1
                target_left[word] -= 1
                prediction_left[word] -= 1
    return _prf(hits, prediction_len, target_len)


_ROUGE_N = re.compile(r"rouge([1-9])")


def rouge(target: str, prediction: str, rouge_type: str = "rouge1",
          use_stemmer: bool = True) -> Tuple[float, float, float]:
    """(precision, recall, F1) of ``prediction`` against ``target``.

    ``rouge_type``: ``rouge1`` .. ``rouge9`` (n-gram overlap), ``rougeL`` (longest common
    subsequence) or ``rougeLsum`` (ROUGE-L over the lines of a summary).
    """
    if rouge_type == "rougeLsum":
        return _rouge_lsum(target, prediction, use_stemmer)
    t, p = rouge_tokenize(target, use_stemmer), rouge_tokenize(prediction, use_stemmer)
    if rouge_type == "rougeL":
        if not t or not p:
            return 0.0, 0.0, 0.0
        return _prf(_lcs_table(t, p)[-1][-1], len(p), len(t))
    match = _ROUGE_N.fullmatch(rouge_type)
    if match is None:
        raise ValueError(
            f"Unknown rouge_type {rouge_type!r}: use rouge1 .. rouge9, rougeL or rougeLsum.")
    n = int(match.group(1))
    t_grams, p_grams = _ngrams(t, n), _ngrams(p, n)
    overlap = sum(min(count, p_grams[gram]) for gram, count in t_grams.items())
    return _prf(overlap, sum(p_grams.values()), sum(t_grams.values()))


def token_f1(response: str, reference: str) -> float:
    """F1 of the distinct lowercased words the two texts share (as PromptLab 0.1.x).

    Distinct words, not counts: "the the the" against "the cat" has precision 1.
    """
    got, want = set(word_tokenize(response.lower())), set(word_tokenize(reference.lower()))
    common = len(got & want)
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


# --- evaluators -------------------------------------------------------------------


class ExactMatch(Evaluator):
    """``exact_match``: True when the response is the reference, character for character."""

    required_keys = ("response", "reference")

    def evaluate(self, data: Dict[str, Any]) -> bool:
        return require("exact_match", data, "response") == require("exact_match", data, "reference")


class F1Score(Evaluator):
    """``f1_score``: F1 of the distinct words shared with the reference, 0..1."""

    required_keys = ("response", "reference")

    def evaluate(self, data: Dict[str, Any]) -> float:
        return token_f1(require("f1_score", data, "response"),
                        require("f1_score", data, "reference"))


class BleuScore(Evaluator):
    """``bleu_score``: sentence BLEU (4-grams, smoothing 4) on Treebank words, 0..1."""

    required_keys = ("response", "reference")

    def evaluate(self, data: Dict[str, Any]) -> float:
        reference = word_tokenize(require("bleu_score", data, "reference"))
        hypothesis = word_tokenize(require("bleu_score", data, "response"))
        return bleu(reference, hypothesis)


class RougeScore(Evaluator):
    """``rouge_score``: the ROUGE F1 of ``rouge_type`` (default ROUGE-1), stemmed words, 0..1.

    The threshold arguments are accepted for compatibility with PromptLab 0.1.x, which
    stored them but never used them.
    """

    required_keys = ("response", "reference")

    def __init__(self, rouge_type: str = "rouge1", precision_threshold: float = 0.5,
                 recall_threshold: float = 0.5, f1_score_threshold: float = 0.5) -> None:
        rouge("", "", rouge_type)  # ValueError now for an unknown type, not per record
        self.rouge_type = rouge_type
        self.precision_threshold = precision_threshold
        self.recall_threshold = recall_threshold
        self.f1_score_threshold = f1_score_threshold

    def evaluate(self, data: Dict[str, Any]) -> float:
        reference = require("rouge_score", data, "reference")
        response = require("rouge_score", data, "response")
        return rouge(reference, response, self.rouge_type)[2]


__all__ = ["ExactMatch", "F1Score", "BleuScore", "RougeScore", "bleu", "rouge", "token_f1",
           "word_tokenize", "split_sentences"]
