"""Evaluators: the Evaluator base and custom metrics, the factory, the metrics without a
model, the model-judged metrics with local stand-in models, and one run over real HTTP
against a fake OpenAI-compatible server on 127.0.0.1.

The stand-in models have only what the runner gives evaluators (PromptLab 0.1.x's
interface): ``invoke(system_prompt, user_prompt)`` returning a ``ModelResponse``, and an
embedding model called with a text, returning a list of floats.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

import pytest

from promptlab.evaluator.evaluator import Evaluator
from promptlab.evaluator.evaluator_factory import BUILTIN_EVALUATORS, EvaluatorFactory
from promptlab.evaluator.judges import parse_score
from promptlab.evaluator.lexical import RougeScore
from promptlab.studio.queries import SELECT_METRICS_OF
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import ModelResponse

from factories import make_config, make_summary

JUDGED = ["fluency", "coherence", "relevance", "groundedness", "faithfulness", "harmful_content"]
LEXICAL = ["exact_match", "f1_score", "bleu_score", "rouge_score"]
FULL_DATA = {"response": "Paris is the capital of France.", "reference": "Paris.",
             "query": "What is the capital of France?", "context": "Paris is France's capital."}


class ScriptedModel:
    """A completion model replying with ``replies`` in turn (the last one repeats)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: List[tuple] = []

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        self.calls.append((system_prompt, user_prompt))
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1]
        return ModelResponse(response=reply, prompt_tokens=1, completion_tokens=1, latency_ms=1)


class NoCalls:
    """A model that must not be called."""

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        raise AssertionError("the model was called")

    def __call__(self, *args: Any) -> Any:
        raise AssertionError("the model was called")


def table_embedding(table: Dict[str, List[float]]) -> Callable[[str], List[float]]:
    return lambda text: table[text]


def evaluate(metric: str, data: Dict[str, Any], completion: Any = None,
             embedding: Any = None) -> Any:
    return EvaluatorFactory.get_evaluator(metric, completion, embedding).evaluate(data)


# --- the base class and custom metrics ---------------------------------------------


class LengthEvaluator(Evaluator):
    """The custom metric of PromptLab's custom-metric sample."""

    def evaluate(self, data: dict):
        return len(str(data["response"]))


class JudgeOfMyOwn(Evaluator):
    """A custom metric asking the experiment's model, as the original's judges did."""

    def __init__(self) -> None:  # no super().__init__(): the attributes still exist
        self.asked = 0

    def evaluate(self, data: dict):
        self.asked += 1
        return self.completion.invoke("Rate it.", data["response"]).response


def test_evaluator_is_abstract():
    with pytest.raises(TypeError):
        Evaluator()


def test_custom_evaluator_as_in_the_sample():
    length = LengthEvaluator()
    evaluator = EvaluatorFactory.get_evaluator("length", None, None, length)
    assert evaluator is length
    assert evaluator.evaluate({"response": "twelve chars"}) == 12


def test_custom_evaluator_gets_the_models():
    model, embedding = ScriptedModel("fine"), table_embedding({})
    custom = EvaluatorFactory.get_evaluator("mine", model, embedding, JudgeOfMyOwn())
    assert custom.completion is model and custom.embedding is embedding
    assert custom.evaluate({"response": "x"}) == "fine"
    assert model.calls == [("Rate it.", "x")]


def test_custom_evaluator_keeps_its_own_model_when_the_experiment_has_none():
    own = ScriptedModel("3")
    custom = JudgeOfMyOwn()
    custom.completion = own
    assert EvaluatorFactory.get_evaluator("mine", None, None, custom).completion is own


def test_custom_evaluator_without_evaluate_is_refused():
    with pytest.raises(TypeError, match="evaluate"):
        EvaluatorFactory.get_evaluator("mine", None, None, object())


# --- the factory ---------------------------------------------------------------------


def test_known_metrics_are_the_originals_names():
    assert EvaluatorFactory.known_metrics() == LEXICAL + ["semantic_similarity"] + [
        "fluency", "coherence", "relevance", "groundedness", "faithfulness", "harmful_content"]


def test_unknown_metric_names_it_and_the_known_ones():
    with pytest.raises(ValueError) as error:
        EvaluatorFactory.get_evaluator("bleu", NoCalls(), NoCalls())
    message = str(error.value)
    assert "'bleu'" in message
    for name in BUILTIN_EVALUATORS:
        assert name in message


def test_class_names_of_the_original_still_name_metrics():
    assert type(EvaluatorFactory.get_evaluator("BleuScore")).__name__ == "BleuScore"
    assert type(EvaluatorFactory.get_evaluator("SemanticSimilarity", None, NoCalls())).__name__ \
        == "SemanticSimilarity"


@pytest.mark.parametrize("metric", list(BUILTIN_EVALUATORS))
def test_getting_an_evaluator_calls_no_model(metric: str):
    evaluator = EvaluatorFactory.get_evaluator(metric, NoCalls(), NoCalls())
    assert isinstance(evaluator, Evaluator)
    assert evaluator is not EvaluatorFactory.get_evaluator(metric, NoCalls(), NoCalls())


@pytest.mark.parametrize("metric", JUDGED)
def test_judged_metric_without_completion_model_is_refused_up_front(metric: str):
    with pytest.raises(ValueError, match="completion_model_config"):
        EvaluatorFactory.get_evaluator(metric, None, NoCalls())


def test_semantic_similarity_without_embedding_model_is_refused_up_front():
    with pytest.raises(ValueError, match="embedding_model_config"):
        EvaluatorFactory.get_evaluator("semantic_similarity", NoCalls(), None)


def test_column_mapping_missing_a_key_is_refused_up_front():
    with pytest.raises(ValueError, match="'reference'"):
        EvaluatorFactory.get_evaluator("bleu_score", column_mapping={"response": "$completion"})
    evaluator = EvaluatorFactory.get_evaluator(
        "groundedness", NoCalls(), column_mapping={"response": "$completion", "context": "doc"})
    assert evaluator.required_keys == ("response", "context")


@pytest.mark.parametrize("metric", LEXICAL + JUDGED)
def test_missing_data_key_is_a_clear_error(metric: str):
    with pytest.raises(ValueError, match=f"{metric}.*column_mapping"):
        evaluate(metric, {"response": "text"} if metric != "fluency" and metric != "harmful_content"
                 else {}, NoCalls())


# --- metrics without a model -----------------------------------------------------------


def test_exact_match():
    assert evaluate("exact_match", {"response": "Paris", "reference": "Paris"}) is True
    assert evaluate("exact_match", {"response": "Paris ", "reference": "Paris"}) is False
    assert evaluate("exact_match", {"response": "paris", "reference": "Paris"}) is False
    assert evaluate("exact_match", {"response": "42", "reference": 42}) is True  # a JSON number


def test_f1_score_counts_distinct_words():
    assert evaluate("f1_score", {"response": "The cat", "reference": "the cat"}) == 1.0
    assert evaluate("f1_score", {"response": "dog", "reference": "cat"}) == 0.0
    assert evaluate("f1_score", {"response": "", "reference": "cat"}) == 0.0
    # {the, cat} against {the, cat, sat, .}: precision 1, recall 1/2.
    assert evaluate("f1_score", {"response": "the the cat", "reference": "The cat sat."}) \
        == pytest.approx(2 / 3)


def test_bleu_and_rouge_bounds():
    same = {"response": "The cat sat on the mat.", "reference": "The cat sat on the mat."}
    assert evaluate("bleu_score", same) == pytest.approx(1.0)
    assert evaluate("rouge_score", same) == pytest.approx(1.0)
    disjoint = {"response": "dogs bark", "reference": "cats meow"}
    assert evaluate("bleu_score", disjoint) == 0.0
    assert evaluate("rouge_score", disjoint) == 0.0


def test_rouge_type_is_checked_when_the_evaluator_is_made():
    with pytest.raises(ValueError, match="rougeX"):
        RougeScore(rouge_type="rougeX")
    assert RougeScore(rouge_type="rougeL").evaluate(
        {"response": "a b c", "reference": "a c"}) == pytest.approx(0.8)


def test_semantic_similarity_is_the_cosine():
    embedding = table_embedding({"a": [1.0, 0.0], "b": [1.0, 1.0], "c": [-2.0, 0.0]})
    assert evaluate("semantic_similarity", {"response": "a", "reference": "b"}, None, embedding) \
        == pytest.approx(2 ** -0.5)
    assert evaluate("semantic_similarity", {"response": "a", "reference": "c"}, None, embedding) \
        == pytest.approx(-1.0)
    assert evaluate("semantic_similarity", {"response": "b", "reference": "b"}, None, embedding) \
        == pytest.approx(1.0)


@pytest.mark.parametrize("table,message", [
    ({"a": [0.0, 0.0], "b": [1.0, 0.0]}, "zero vector"),
    ({"a": [1.0], "b": [1.0, 0.0]}, "different lengths"),
    ({"a": [], "b": [1.0]}, "empty"),
    ({"a": [float("nan")], "b": [1.0]}, "NaN"),
    ({"a": "not numbers", "b": [1.0]}, "sequence of numbers"),
])
def test_semantic_similarity_refuses_bad_vectors(table: dict, message: str):
    with pytest.raises((ValueError, TypeError), match=message):
        evaluate("semantic_similarity", {"response": "a", "reference": "b"}, None,
                 table_embedding(table))


# --- judged metrics ------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["fluency", "coherence", "relevance", "groundedness",
                                    "harmful_content"])
def test_judge_returns_the_models_score(metric: str):
    model = ScriptedModel("4")
    assert evaluate(metric, FULL_DATA, model) == 4
    ((system_prompt, user_prompt),) = model.calls
    assert "1 to 5" in system_prompt
    assert FULL_DATA["response"] in user_prompt
    assert "{{" not in user_prompt


def test_judge_prompts_hold_the_records_values():
    model = ScriptedModel("5")
    evaluate("groundedness", FULL_DATA, model)
    user_prompt = model.calls[0][1]
    for key in ("response", "context", "query"):
        assert FULL_DATA[key] in user_prompt
    model = ScriptedModel("5")
    evaluate("groundedness", {"response": "r", "context": "c"}, model)  # query is optional
    assert "(not given)" in model.calls[0][1]


def test_judge_does_not_substitute_placeholders_inside_values():
    model = ScriptedModel("3")
    evaluate("groundedness", {"response": "see {{context}}", "context": "SOURCE"}, model)
    assert "see {{context}}" in model.calls[0][1]


@pytest.mark.parametrize("reply,score", [
    ("4", 4), (" 4\n", 4), ("**4**", 4), ("4.", 4), ("Score: 4", 4), ("Rating - 2", 2),
    ("I would rate it 3/5.", 3), ("3 out of 5", 3), ('{"score": 5}', 5),
    ('```json\n{"rating": "2"}\n```', 2), ("<think>Is it 2? or 3?</think>\n3", 3),
    ("The answer deserves a 5", 5), ("Score: 2. On reflection, Score: 3", 3),
    ("4\n\nFluent, with 2 small slips.", 4),
])
def test_scores_are_read_from_wordy_replies(reply: str, score: int):
    assert parse_score(reply, 1, 5) == score
    assert evaluate("fluency", {"response": "x"}, ScriptedModel(reply)) == score


@pytest.mark.parametrize("reply", ["", "excellent", "0", "6", "10/10", "-1", "between 3 and 4",
                                   "2.5", "On a scale of 1 to 5 this is good"])
def test_unreadable_or_out_of_range_reply_gives_none_and_a_warning(reply: str, caplog):
    with caplog.at_level(logging.WARNING, logger="promptlab.evaluator"):
        assert evaluate("coherence", FULL_DATA, ScriptedModel(reply)) is None
    assert "coherence" in caplog.text


def test_model_errors_are_raised_not_hidden():
    class Down:
        def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
            raise ConnectionError("model server down")

    with pytest.raises(ConnectionError, match="down"):
        evaluate("relevance", FULL_DATA, Down())


def test_judge_accepts_str_replies_callables_and_async_models():
    assert evaluate("fluency", {"response": "x"}, lambda system, user: "2") == 2

    class Completion:
        completion = "5"

    assert evaluate("fluency", {"response": "x"}, lambda system, user: Completion()) == 5

    class AsyncModel:
        async def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
            await asyncio.sleep(0)
            return ModelResponse("4", 1, 1, 1)

    assert evaluate("fluency", {"response": "x"}, AsyncModel()) == 4

    async def inside_a_loop():
        return evaluate("fluency", {"response": "x"}, AsyncModel())

    with pytest.raises(RuntimeError, match="to_thread"):
        asyncio.run(inside_a_loop())

    async def in_a_worker_thread():  # how the runner evaluates records
        return await asyncio.to_thread(evaluate, "fluency", {"response": "x"}, AsyncModel())

    assert asyncio.run(in_a_worker_thread()) == 4


def test_judge_reply_of_the_wrong_type_is_a_clear_error():
    with pytest.raises(TypeError, match=r"\.response"):
        evaluate("fluency", {"response": "x"}, lambda system, user: 4)


def test_faithfulness_is_the_share_of_supported_claims():
    model = ScriptedModel("Claims:\n- Paris is the capital of France.\n2. Paris has 40 million people.\n",
                          "1", "0")
    data = {"response": "Paris, the capital of France, has 40 million people.",
            "context": "Paris is the capital of France.", "query": "Tell me about Paris."}
    assert evaluate("faithfulness", data, model) == 0.5
    claims_call, first, second = model.calls
    assert data["response"] in claims_call[1]
    assert "Paris is the capital of France." in first[1] and data["context"] in first[1]
    assert "Paris has 40 million people." in second[1]


@pytest.mark.parametrize("verdicts,expected", [(("yes", "Verdict: 1"), 1.0),
                                                (("No.", "false"), 0.0),
                                                (('{"verdict": 1}', "maybe"), None)])
def test_faithfulness_reads_verdicts(verdicts: tuple, expected: Optional[float]):
    model = ScriptedModel("claim one\nclaim two", *verdicts)
    assert evaluate("faithfulness", {"response": "r", "context": "c"}, model) == expected


def test_faithfulness_without_claims_is_none():
    model = ScriptedModel("NONE")
    assert evaluate("faithfulness", {"response": "Hello!", "context": "c"}, model) is None
    assert len(model.calls) == 1


def test_faithfulness_bounds_the_number_of_calls():
    model = ScriptedModel("\n".join(f"claim {i}" for i in range(500)), "1")
    assert evaluate("faithfulness", {"response": "r", "context": "c"}, model) == 1.0
    assert len(model.calls) == 1 + 50


# --- results as the studio reads them --------------------------------------------------


def test_results_are_stored_and_averaged_by_the_studio(tmp_path):
    """Every metric's results, in the stored shape, averaged by the studio's query."""
    embedding = table_embedding({"Paris is the capital.": [1.0, 0.0], "Paris.": [1.0, 1.0],
                                 "I don't know.": [0.0, 1.0]})
    records = [("Paris is the capital.", "4"), ("I don't know.", "unreadable")]
    metrics = ["exact_match", "bleu_score", "semantic_similarity", "fluency"]
    summary = make_summary("exp-eval", len(records))
    for record, (completion, judge_reply) in zip(summary, records):
        data = {"response": completion, "reference": "Paris."}
        record["completion"] = completion
        record["evaluation"] = json.dumps([
            {"metric": m, "result": EvaluatorFactory.get_evaluator(
                m, ScriptedModel(judge_reply), embedding).evaluate(data)}
            for m in metrics])
    db_file = tmp_path / "eval.db"
    LocalTracer({"type": "local", "db_file": str(db_file)}).trace_experiment(
        make_config(template=None), summary)
    with sqlite3.connect(db_file) as con:
        rows = {m: (avg, n) for _, m, avg, n in con.execute(SELECT_METRICS_OF, ("exp-eval",))}
    assert rows["exact_match"] == (0.0, 2)
    assert rows["fluency"] == (4.0, 1)  # the unreadable reply is null, not averaged
    assert rows["semantic_similarity"][0] == pytest.approx((2 ** -0.5 + 2 ** -0.5) / 2)
    assert 0.0 < rows["bleu_score"][0] < 1.0 and rows["bleu_score"][1] == 2


# --- over real HTTP -------------------------------------------------------------------


class _FakeOpenAI(BaseHTTPRequestHandler):
    """/v1/chat/completions answers "4" (claims: two lines, verdicts: 1); /v1/embeddings
    gives a vector of letter counts."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/chat/completions":
            system = body["messages"][0]["content"]
            text = ("The sky is blue.\nGrass is red." if "factual claims" in system
                    else "1" if "fact checker. Decide" in system else "Score: 4")
            reply = {"choices": [{"message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
        elif self.path == "/v1/embeddings":
            text = body["input"]
            reply = {"data": [{"embedding": [float(text.count(c)) for c in "aeiou"]}]}
        else:
            self.send_error(404)
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_openai():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class HttpChatModel:
    """A minimal OpenAI-compatible chat client, shaped like a custom PromptLab model."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        reply = _post(f"{self.base_url}/chat/completions", {"model": "judge", "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": user_prompt}]})
        return ModelResponse(reply["choices"][0]["message"]["content"],
                             reply["usage"]["prompt_tokens"], reply["usage"]["completion_tokens"], 0)


class HttpEmbedding:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def __call__(self, text: str) -> List[float]:
        return _post(f"{self.base_url}/embeddings", {"model": "e", "input": text})["data"][0]["embedding"]


def test_judges_and_embeddings_over_http(fake_openai: str):
    completion, embedding = HttpChatModel(fake_openai), HttpEmbedding(fake_openai)
    results = {m: evaluate(m, FULL_DATA, completion, embedding) for m in JUDGED}
    assert results == {"fluency": 4, "coherence": 4, "relevance": 4, "groundedness": 4,
                       "faithfulness": 1.0, "harmful_content": 4}
    similarity = evaluate("semantic_similarity", {"response": "aeiou", "reference": "aaeeiioouu"},
                          completion, embedding)
    assert similarity == pytest.approx(1.0)


def test_evaluators_need_only_the_standard_library():
    """nltk and rouge-score are test references, never imported at run time."""
    import subprocess
    import sys
    code = ("import sys, promptlab.evaluator.evaluator_factory as f; "
            "f.EvaluatorFactory.get_evaluator('bleu_score').evaluate({'response': 'a b', 'reference': 'a b'}); "
            "f.EvaluatorFactory.get_evaluator('rouge_score').evaluate({'response': 'a b', 'reference': 'a b'}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nltk', 'rouge_score', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
