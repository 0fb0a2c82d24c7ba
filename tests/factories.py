"""Builders of PromptLab objects for tests: datasets, templates, experiment
configurations and experiment summaries shaped as the original PromptLab made them."""

from __future__ import annotations

from typing import Any, Dict, List

from promptlab.types import (
    Dataset,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    PromptTemplate,
)


def make_dataset(name: str = "qa", version: int = 0, **kw) -> Dataset:
    kw.setdefault("description", "questions")
    kw.setdefault("file_path", "/data/qa.jsonl")
    return Dataset(name=name, version=version, **kw)


def make_template(name: str = "tpl", version: int = 0, **kw) -> PromptTemplate:
    kw.setdefault("description", "a template")
    kw.setdefault("system_prompt", "You are <role>.")
    kw.setdefault("user_prompt", "Answer: <question>")
    return PromptTemplate(name=name, version=version, **kw)


def make_config(template: Any = "default", **kw) -> ExperimentConfig:
    kw.setdefault("completion_model_config",
                  ModelConfig(name="ollama/llama3.2", type="ollama", model=object()))
    kw.setdefault("dataset", make_dataset())
    kw.setdefault("evaluation", [EvaluationConfig(metric="f1", column_mapping={"a": "b"})])
    return ExperimentConfig(prompt_template=make_template() if template == "default"
                            else template, **kw)


def make_summary(experiment_id: str, n: int = 3, **overrides) -> List[Dict[str, Any]]:
    records = [
        {
            "experiment_id": experiment_id,
            "dataset_record_id": f"rec-{i}",
            "completion": f"completion {i}",
            "prompt_tokens": 10 + i,
            "completion_tokens": 20 + i,
            "latency_ms": 1.5 * i,
            "evaluation": [{"metric": "f1", "result": i}],
        }
        for i in range(n)
    ]
    for record in records:
        record.update(overrides)
    return records
