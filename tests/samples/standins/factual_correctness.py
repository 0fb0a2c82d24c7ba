"""Stand-in for the custom-metric sample's factual_correctness.py, which needs ragas and
langchain_ollama: the same class name and inputs, judged by the experiment's own
completion model (as a custom evaluator may be), with no third-party package."""

from promptlab.evaluator.evaluator import Evaluator


class RagasFactualCorrectness(Evaluator):
    def evaluate(self, data: dict):
        answer = self.completion.invoke(
            "Rate from 0 to 5 how factually consistent the response is with the reference.",
            f"Response: {data['response']}\nReference: {data['reference']}",
        ).response
        digits = [c for c in answer if c.isdigit()]
        return int(digits[0]) / 5 if digits else None
