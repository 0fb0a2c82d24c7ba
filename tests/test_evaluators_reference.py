"""The lexical metrics against their reference implementations, on a fixed set of pairs.

PromptLab 0.1.x computed ``bleu_score`` as NLTK's ``sentence_bleu([word_tokenize(ref)],
word_tokenize(response), smoothing_function=SmoothingFunction().method4)`` and
``rouge_score`` as ``rouge_scorer.RougeScorer([type], use_stemmer=True)`` F1. Ours are
our own standard-library code; here they must give the same numbers (to 1e-12) and the
same tokens and stems. NLTK's sentence splitter needs the Punkt data, a download: the
pipeline is compared sentence by sentence with NLTK's word tokenizer, and once more
end to end when Punkt happens to be installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
nltk_tokenize = pytest.importorskip("nltk.tokenize")
nltk_porter = pytest.importorskip("nltk.stem.porter")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

from promptlab.evaluator._text import porter_stem, rouge_tokenize, split_sentences, word_tokenize  # noqa: E402
from promptlab.evaluator.evaluator_factory import EvaluatorFactory  # noqa: E402
from promptlab.evaluator.lexical import RougeScore, bleu, rouge  # noqa: E402

TOLERANCE = 1e-12

# (response, reference): identical, partial, disjoint, short, empty, punctuation,
# contractions, quotes, numbers, repeated words, several sentences and lines.
PAIRS = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("A quick brown fox jumps over the lazy dog", "The quick brown fox jumped over the lazy dogs"),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("I don't know.", "I do not know the answer."),
    ("Yes", "Yes, it is."),
    ("Yes", "No"),
    ("", "Something to compare with."),
    ("Nothing in common here", ""),
    ("the the the the the the the", "The cat is on the mat."),
    ("It costs $3.88 (roughly 3,36 euros) in New York.", "It costs about $4 in New York City."),
    ("\"Please,\" she said, \"don't go!\"", "She asked him not to go."),
    ("Running runners ran quickly; they're running again.", "The runner runs quickly and will run again."),
    ("Dr. Smith arrived at 4:30 pm. He was late! Was he sorry? Yes.",
     "Dr. Smith came late, at half past four. He apologised."),
    ("Photosynthesis converts light energy into chemical energy stored in glucose.",
     "Plants use photosynthesis to convert light energy into chemical energy, which is stored "
     "as glucose."),
    ("Machine learning models generalize from training data to unseen examples.\n"
     "Overfitting happens when they memorize noise.",
     "Models learn from training data and should generalize to new examples.\n"
     "Memorizing the noise in the data is called overfitting."),
    ("The relational database normalizes tables; conditional hopefulness is irrelevant.",
     "Relational databases use normalization of tables and conditions."),
    ("We're gonna need a bigger boat -- the shark's huge...", "You're going to need a bigger boat."),
    ("1 2 3 4 5 6 7 8", "1 2 3 4 5 6 7 8 9 10"),
    ("Caresses, ponies, ties, feed, agreed, plastered, motoring, happiness, sky, dying.",
     "caress pony tie feeding agree plaster motor happy skies die"),
]


def _nltk_words(text: str) -> list:
    """NLTK's word tokens, on the sentences of our splitter (Punkt needs downloaded data)."""
    return [w for s in split_sentences(text) for w in nltk_tokenize.word_tokenize(s, preserve_line=True)]


def _nltk_bleu(response: str, reference: str) -> float:
    smoothing = nltk_bleu.SmoothingFunction().method4
    return float(nltk_bleu.sentence_bleu([_nltk_words(reference)], _nltk_words(response),
                                         smoothing_function=smoothing))


def _punkt_installed() -> bool:
    import nltk
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return True
    except LookupError:
        return False


@pytest.mark.parametrize("response,reference", PAIRS)
def test_tokens_are_nltks(response: str, reference: str):
    assert word_tokenize(response) == _nltk_words(response)
    assert word_tokenize(reference) == _nltk_words(reference)


@pytest.mark.parametrize("response,reference", PAIRS)
def test_bleu_is_nltks_sentence_bleu_with_smoothing_4(response: str, reference: str):
    ours = EvaluatorFactory.get_evaluator("bleu_score").evaluate(
        {"response": response, "reference": reference})
    expected = _nltk_bleu(response, reference)
    assert abs(ours - expected) <= TOLERANCE, (ours, expected)
    # The arithmetic alone, on NLTK's own tokens.
    assert abs(bleu(_nltk_words(reference), _nltk_words(response)) - expected) <= TOLERANCE


@pytest.mark.skipif(not _punkt_installed(), reason="NLTK's Punkt data is not installed")
@pytest.mark.parametrize("response,reference", PAIRS)
def test_bleu_end_to_end_with_punkt(response: str, reference: str):
    smoothing = nltk_bleu.SmoothingFunction().method4
    expected = nltk_bleu.sentence_bleu([nltk_tokenize.word_tokenize(reference)],
                                       nltk_tokenize.word_tokenize(response),
                                       smoothing_function=smoothing)
    ours = EvaluatorFactory.get_evaluator("bleu_score").evaluate(
        {"response": response, "reference": reference})
    assert abs(ours - expected) <= TOLERANCE


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"])
@pytest.mark.parametrize("response,reference", PAIRS)
def test_rouge_is_rouge_scores(rouge_type: str, response: str, reference: str):
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)
    expected = scorer.score(reference, response)[rouge_type]
    ours = rouge(reference, response, rouge_type)
    for got, want in zip(ours, (expected.precision, expected.recall, expected.fmeasure)):
        assert abs(got - want) <= TOLERANCE, (rouge_type, ours, expected)
    evaluator = RougeScore(rouge_type=rouge_type)
    assert abs(evaluator.evaluate({"response": response, "reference": reference})
               - expected.fmeasure) <= TOLERANCE


def test_rouge_score_default_is_rouge1_f1():
    response, reference = PAIRS[1]
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = scorer.score(reference, response)["rouge1"].fmeasure
    got = EvaluatorFactory.get_evaluator("rouge_score").evaluate(
        {"response": response, "reference": reference})
    assert abs(got - expected) <= TOLERANCE


def _vocabulary() -> set:
    """Words of the repository's own text files plus the examples of Porter's paper."""
    words = set()
    root = Path(__file__).resolve().parent.parent
    for path in list(root.glob("*.md")) + list(root.glob("docs/**/*.md")) + list(root.glob("promptlab/**/*.py")):
        words.update(re.findall(r"[a-z]{3,}", path.read_text(errors="ignore").lower()))
    words.update(
        "caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated "
        "troubled sized hopping tanned falling hissing fizzed failing filing happy sky "
        "relational conditional rational valenci hesitanci digitizer conformabli radicalli "
        "differentli vileli analogousli vietnamization predication operator feudalism "
        "decisiveness hopefulness callousness formaliti sensitiviti sensibiliti triplicate "
        "formative formalize electriciti electrical hopeful goodness revival allowance "
        "inference airliner gyroscopic adjustable defensible irritant replacement adjustment "
        "dependent adoption homologou communism activate angulariti homologous effective "
        "bowdlerize probate rate cease controll roll dying lying news innings cried died lies "
        "archaeology dyed yelling says syzygy toy generalization fully".split())
    return words


def test_porter_stems_are_nltks():
    stemmer = nltk_porter.PorterStemmer()
    words = sorted(_vocabulary())
    assert len(words) > 500
    wrong = [(w, porter_stem(w), stemmer.stem(w)) for w in words if porter_stem(w) != stemmer.stem(w)]
    assert wrong == []


def test_rouge_tokens_are_rouge_scores():
    from rouge_score.tokenizers import DefaultTokenizer
    tokenizer = DefaultTokenizer(use_stemmer=True)
    for response, reference in PAIRS:
        for text in (response, reference):
            assert rouge_tokenize(text) == tokenizer.tokenize(text)


def test_report_largest_difference(capsys):
    """Not a threshold test: prints the largest difference over the set (shown with -s)."""
    bleu_worst = max(abs(EvaluatorFactory.get_evaluator("bleu_score").evaluate(
        {"response": r, "reference": t}) - _nltk_bleu(r, t)) for r, t in PAIRS)
    rouge_worst = 0.0
    for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)
        for r, t in PAIRS:
            rouge_worst = max(rouge_worst, abs(rouge(t, r, rouge_type)[2]
                                               - scorer.score(t, r)[rouge_type].fmeasure))
    print(json.dumps({"pairs": len(PAIRS), "bleu_max_abs_diff": bleu_worst,
                      "rouge_f1_max_abs_diff": rouge_worst}))
    assert bleu_worst <= TOLERANCE and rouge_worst <= TOLERANCE
