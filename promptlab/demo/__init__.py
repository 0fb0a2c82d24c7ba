"""``promptlab demo``: the main job end to end, offline, in a few seconds.

It stores a prompt template in two versions and a dataset (twelve questions shipped in
the package, copied beside the database), runs both versions with a *keyword
baseline* (a few lines of deterministic Python that copy a word from the prompt: no
network, no weights, and not a language model), scores every answer with
``exact_match`` and ``f1_score``, and prints each version's averages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import datetime
from importlib import resources
from typing import Any, Dict, List, Mapping, TextIO

from promptlab.model.model import Model
from promptlab.types import Dataset, ModelConfig, ModelResponse, PromptTemplate

TEMPLATE = "capital_qa"
DATASET = "capitals"
SAMPLE = "capitals.jsonl"
SYSTEM_PROMPT = "Answer with the name of the city only."
USER_PROMPTS = ("Question: <question>",                        # version 0
                "Context: <context>\nQuestion: <question>")    # version 1: with context
MODEL_NAME = "demo/keyword-baseline"
METRICS = ("exact_match", "f1_score")

_WORD = re.compile(r"\b[A-Z][a-z]+\b")
_TOKEN = re.compile(r"\w+")


class KeywordBaseline(Model):
    """A deterministic baseline, not an LLM: it answers with the first capitalized word
    of the prompt's context that the question does not use, or without a context the
    question's last capitalized word."""

    def invoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        context, _, question = user_prompt.rpartition("Question:")
        context = context.replace("Context:", "")
        asked = set(_WORD.findall(question))
        candidates = [w for w in _WORD.findall(context) if w not in asked]
        words = _WORD.findall(question)
        answer = candidates[0] if candidates else (words[-1] if words else "")
        return ModelResponse(response=answer, prompt_tokens=len(_TOKEN.findall(user_prompt)),
                             completion_tokens=1, latency_ms=0)

    async def ainvoke(self, system_prompt: str, user_prompt: str) -> ModelResponse:
        return self.invoke(system_prompt, user_prompt)


# Used only when the built-in evaluators (promptlab.evaluator) are not installed: the
# same names and meaning as the original's exact_match and f1_score.
class _ExactMatch:
    def evaluate(self, data: Mapping[str, Any]) -> bool:
        return bool(data["response"] == data["reference"])


class _F1:
    def evaluate(self, data: Mapping[str, Any]) -> float:
        response = set(_TOKEN.findall(str(data["response"]).lower()))
        reference = set(_TOKEN.findall(str(data["reference"]).lower()))
        common = len(response & reference)
        if not common:
            return 0.0
        precision, recall = common / len(response), common / len(reference)
        return 2 * precision * recall / (precision + recall)


def _metric(name: str, fallback: type) -> Dict[str, Any]:
    """The evaluation entry of a metric: the built-in by its name when installed."""
    entry: Dict[str, Any] = {"metric": name,
                             "column_mapping": {"response": "$completion", "reference": "answer"}}
    try:
        import promptlab.evaluator.evaluator_factory  # noqa: F401
    except ImportError:
        entry["evaluator"] = fallback()
    return entry


def _dataset_file(db_file: str) -> str:
    """The sample, copied beside the database so the studio can show its records."""
    target = os.path.join(os.path.dirname(os.path.abspath(db_file)), f"promptlab-demo-{SAMPLE}")
    if not os.path.exists(target):
        with resources.as_file(resources.files("promptlab.demo") / SAMPLE) as source:
            shutil.copyfile(source, target)
    return target


def _assets(pl: Any, db_file: str) -> List[PromptTemplate]:
    """The template's two versions and the dataset; reused when a demo ran before."""
    latest = pl.tracer.get_latest_asset(TEMPLATE)
    for version in range(0 if latest is None else latest.asset_version + 1, len(USER_PROMPTS)):
        template = PromptTemplate(name=TEMPLATE, description="Capital cities, "
                                  + ("question only" if version == 0 else "with context"),
                                  system_prompt=SYSTEM_PROMPT, user_prompt=USER_PROMPTS[version])
        (pl.asset.create if version == 0 else pl.asset.update)(template)
    if pl.tracer.get_latest_asset(DATASET) is None:
        pl.asset.create(Dataset(name=DATASET, description="Twelve capital-city questions "
                                "with a context sentence (PromptLab demo)",
                                file_path=_dataset_file(db_file)))
    return [pl.asset.get(TEMPLATE, version) for version in range(len(USER_PROMPTS))]


def _averages(pl: Any, experiment_id: str) -> Dict[str, float]:
    totals: Dict[str, List[float]] = {metric: [] for metric in METRICS}
    for row in pl.tracer.get_experiments():
        if row["experiment_id"] == experiment_id:
            for item in json.loads(row["evaluation"]):
                totals[item["metric"]].append(float(item["result"]))
    return {metric: sum(v) / len(v) if v else 0.0 for metric, v in totals.items()}


def run_demo(db_file: str, out: TextIO) -> Dict[int, Dict[str, float]]:
    """Run the demo on ``db_file`` (created if missing); returns each version's averages."""
    from promptlab import PromptLab

    pl = PromptLab({"type": "local", "db_file": db_file})
    templates = _assets(pl, db_file)
    latest = pl.tracer.get_latest_asset(DATASET)
    if latest is None:  # _assets() stored it
        raise RuntimeError(f"the demo dataset {DATASET!r} is missing from {db_file}")
    dataset = pl.asset.get(DATASET, latest.asset_version)
    model = KeywordBaseline(ModelConfig(name=MODEL_NAME, type="completion"))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results: Dict[int, Dict[str, float]] = {}
    print(f"PromptLab demo on {getattr(pl.tracer, 'db_file', db_file)}: "
          f"template {TEMPLATE!r} (2 versions), dataset {DATASET!r}.", file=out)
    print(f"Model: {MODEL_NAME}, a deterministic keyword baseline that copies a word from "
          "the prompt. It runs offline and is not an LLM.", file=out)
    for template in templates:
        name = f"demo-v{template.version}-{stamp}-{uuid.uuid4().hex[:4]}"
        pl.experiment.run({
            "name": name,
            "completion_model_config": {"name": MODEL_NAME, "type": "completion",
                                        "model": model},
            "prompt_template": template,
            "dataset": dataset,
            "evaluation": [_metric("exact_match", _ExactMatch), _metric("f1_score", _F1)],
        })
        results[template.version] = averages = _averages(pl, name)
        if template.version == 0:
            print(f"\n{'version':<9}{'experiment':<30}" + "".join(f"{m:>13}" for m in METRICS),
                  file=out)
        print(f"v{template.version:<8}{name:<30}"
              + "".join(f"{averages[m]:>13.2f}" for m in METRICS), file=out)
    print(f"\nCompare them record by record in the studio:\n"
          f"  promptlab studio start -d {db_file}", file=out)
    return results
