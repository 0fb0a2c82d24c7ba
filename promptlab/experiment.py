"""``pl.experiment``: run a prompt template (or an agent) over a dataset, evaluate
every completion, and trace the experiment.

A run first checks everything it can without calling a model (the assets, every
dataset record's ``id``, every ``<placeholder>`` and mapped column, every metric),
then calls the model for the records concurrently, at most ``max_concurrent_tasks``
at once, and traces the experiment once at the end, in one transaction: a run that
fails or is interrupted leaves no experiment behind.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from promptlab.model.model_factory import ModelFactory
from promptlab.progress import Progress
from promptlab.templates import fill, placeholders
from promptlab.types import ExperimentConfig, ModelResponse

log = logging.getLogger("promptlab")

COMPLETION = "$completion"
DEFAULT_CONCURRENCY = 5


@dataclass
class _Plan:
    """What a run needs, all checked before the first model call."""

    config: ExperimentConfig
    experiment_id: str
    records: List[Dict[str, Any]]
    system_prompt: str
    user_prompt: str
    completion_model: Any
    agent_proxy: Optional[Callable[..., Any]]
    evaluators: List[Tuple[str, Any, Dict[str, Any]]]
    concurrency: int
    created_at: str = field(default_factory=lambda: datetime.now().isoformat())


def load_dataset(path: str, name: str) -> List[Dict[str, Any]]:
    """The JSON Lines records of a dataset file, each an object with a unique ``id``."""
    records: List[Dict[str, Any]] = []
    seen = set()
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                where = f"dataset {name!r} ({path}), line {number}"
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{where}: not JSON ({exc}).") from None
                if not isinstance(record, dict) or "id" not in record:
                    raise ValueError(f"{where}: each line must be a JSON object with an "
                                     "\"id\".")
                key = json.dumps(record["id"])
                if key in seen:
                    raise ValueError(f"{where}: the id {record['id']!r} was used before.")
                seen.add(key)
                records.append(record)
    except FileNotFoundError:
        raise FileNotFoundError(f"Dataset {name!r}: no file at {path!r}.") from None
    return records


def _evaluator(metric: str, custom: Any, completion_model: Any, embedding_model: Any,
               column_mapping: Mapping[str, Any]) -> Any:
    """The evaluator of one metric: the config's own, or a built-in by its name, from
    ``EvaluatorFactory`` (which also checks the mapping of a built-in)."""
    factory: Any = None
    try:
        from promptlab.evaluator.evaluator_factory import EvaluatorFactory as factory
    except ImportError:
        pass
    if factory is not None:
        get = factory.get_evaluator
        if "column_mapping" in inspect.signature(get).parameters:
            return get(metric, completion_model, embedding_model, custom,
                       column_mapping=column_mapping)
        return get(metric, completion_model, embedding_model, custom)
    if custom is None:
        raise ValueError(f"Unknown metric {metric!r}: no built-in evaluators are "
                         "installed; give the metric an 'evaluator'.")
    if not callable(getattr(custom, "evaluate", None)):
        raise TypeError(f"The evaluator of metric {metric!r} has no evaluate(data) method.")
    # As the original: a custom evaluator may judge with the experiment's models.
    custom.completion = completion_model
    custom.embedding = embedding_model
    return custom


def _as_response(value: Any, who: str) -> ModelResponse:
    if isinstance(value, ModelResponse):
        return value
    if isinstance(value, str):
        return ModelResponse(response=value, prompt_tokens=0, completion_tokens=0,
                             latency_ms=0)
    if all(hasattr(value, f) for f in ("response", "prompt_tokens", "completion_tokens",
                                       "latency_ms")):
        return ModelResponse(response=value.response, prompt_tokens=value.prompt_tokens,
                             completion_tokens=value.completion_tokens,
                             latency_ms=value.latency_ms)
    raise TypeError(f"{who} returned {type(value).__name__}, not a ModelResponse.")


def _json_value(value: Any) -> Any:
    """A metric result as a JSON value (numpy scalars as numbers, others as text)."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


class Experiment:
    """Runs experiments and traces them with the PromptLab's tracer."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    # --- public -----------------------------------------------------------

    def run(self, config: Union[ExperimentConfig, Mapping[str, Any]]) -> str:
        """Run the experiment on worker threads and trace it; returns its id."""
        plan = self._plan(config)
        progress = Progress(plan.experiment_id, len(plan.records))
        summary: List[Optional[Dict[str, Any]]] = [None] * len(plan.records)
        pool = ThreadPoolExecutor(max_workers=plan.concurrency,
                                  thread_name_prefix="promptlab-run")
        futures = {pool.submit(self._record_sync, plan, record): i
                   for i, record in enumerate(plan.records)}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    summary[futures[future]] = future.result()  # raises the first failure
                    progress.advance()
        finally:
            # On an error or Ctrl-C: drop what has not started; nothing is traced.
            pool.shutdown(wait=False, cancel_futures=True)
            progress.close()
        return self._trace(plan, summary)

    async def run_async(self, config: Union[ExperimentConfig, Mapping[str, Any]]) -> str:
        """Run the experiment as asyncio tasks and trace it; returns its id."""
        plan = self._plan(config)
        progress = Progress(plan.experiment_id, len(plan.records))
        semaphore = asyncio.Semaphore(plan.concurrency)

        async def one(record: Dict[str, Any]) -> Dict[str, Any]:
            async with semaphore:
                result = await self._record_async(plan, record)
            progress.advance()
            return result

        tasks = [asyncio.ensure_future(one(record)) for record in plan.records]
        try:
            summary = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            progress.close()
        return self._trace(plan, list(summary))

    # --- preparation ------------------------------------------------------

    def _plan(self, config: Union[ExperimentConfig, Mapping[str, Any]]) -> _Plan:
        if isinstance(config, Mapping):
            config = ExperimentConfig(**config)
        if config.agent_proxy is None and config.completion_model_config is None:
            raise ValueError("An experiment needs a completion_model_config or an "
                             "agent_proxy.")
        experiment_id = config.name or str(uuid.uuid4())
        exists = getattr(self.tracer, "experiment_exists", None)
        if config.name and callable(exists) and exists(experiment_id):
            raise ValueError(f"An experiment named {experiment_id!r} exists already; "
                             "give this one another name.")

        system_prompt = user_prompt = ""
        if config.prompt_template is not None:
            template = self.tracer.get_asset(config.prompt_template.name,
                                             config.prompt_template.version)
            system_prompt, user_prompt = template.prompts()
        dataset = self.tracer.get_asset(config.dataset.name, config.dataset.version)
        if dataset.file_path is None:
            raise ValueError(f"Dataset {config.dataset.name!r} version "
                             f"{config.dataset.version} names no file.")
        records = load_dataset(dataset.file_path, config.dataset.name)
        if not records:
            raise ValueError(f"Dataset {config.dataset.name!r} has no records: there is "
                             "nothing to run.")
        if config.agent_proxy is None:
            self._check_columns(records, placeholders(system_prompt, user_prompt),
                                "the prompt template's placeholder")
        for evaluation in config.evaluation:
            self._check_columns(records, [c for c in evaluation.column_mapping.values()
                                          if c != COMPLETION],
                                f"the column_mapping of metric {evaluation.metric!r}")

        completion_model = embedding_model = None
        if config.completion_model_config is not None:
            completion_model = ModelFactory.get_model(config.completion_model_config, True)
        if config.embedding_model_config is not None:
            embedding_model = ModelFactory.get_model(config.embedding_model_config, False)
        evaluators = [(e.metric, _evaluator(e.metric, e.evaluator, completion_model,
                                            embedding_model, e.column_mapping),
                       dict(e.column_mapping))
                      for e in config.evaluation]
        concurrency = (getattr(config.completion_model_config, "max_concurrent_tasks", None)
                       or getattr(completion_model, "max_concurrent_tasks", None)
                       or DEFAULT_CONCURRENCY)
        return _Plan(config=config, experiment_id=experiment_id, records=records,
                     system_prompt=system_prompt, user_prompt=user_prompt,
                     completion_model=completion_model, agent_proxy=config.agent_proxy,
                     evaluators=evaluators, concurrency=max(1, int(concurrency)))

    @staticmethod
    def _check_columns(records: List[Dict[str, Any]], columns: List[str], what: str) -> None:
        for record in records:
            missing = [c for c in columns if c not in record]
            if missing:
                raise ValueError(f"Dataset record {record['id']!r} has no column "
                                 f"{missing[0]!r}, used as {what}; its columns are "
                                 f"{', '.join(record)}.")

    # --- one record -------------------------------------------------------

    def _prompts(self, plan: _Plan, record: Dict[str, Any]) -> Tuple[str, str]:
        return fill(plan.system_prompt, record), fill(plan.user_prompt, record)

    def _record_sync(self, plan: _Plan, record: Dict[str, Any]) -> Dict[str, Any]:
        if plan.agent_proxy is not None:
            value, who = plan.agent_proxy(record), "agent_proxy"
        else:
            model, who = plan.completion_model, "the completion model"
            system_prompt, user_prompt = self._prompts(plan, record)
            invoke = getattr(model, "invoke", None) or model
            value = invoke(system_prompt, user_prompt)
        if inspect.isawaitable(value):  # an async agent or model: this thread has no loop
            value = asyncio.run(_awaited(value))
        return self._result(plan, record, _as_response(value, who))

    async def _record_async(self, plan: _Plan, record: Dict[str, Any]) -> Dict[str, Any]:
        if plan.agent_proxy is not None:
            who = "agent_proxy"
            if inspect.iscoroutinefunction(plan.agent_proxy):
                value = await plan.agent_proxy(record)
            else:  # a blocking agent must not stall the other records
                value = await asyncio.to_thread(plan.agent_proxy, record)
        else:
            model, who = plan.completion_model, "the completion model"
            system_prompt, user_prompt = self._prompts(plan, record)
            ainvoke = getattr(model, "ainvoke", None)
            if ainvoke is not None:
                value = await ainvoke(system_prompt, user_prompt)
            else:
                value = await asyncio.to_thread(model, system_prompt, user_prompt)
        if inspect.isawaitable(value):
            value = await value
        response = _as_response(value, who)
        # Evaluators block (some call models): run them off the event loop.
        return await asyncio.to_thread(self._result, plan, record, response)

    def _result(self, plan: _Plan, record: Dict[str, Any],
                response: ModelResponse) -> Dict[str, Any]:
        evaluation = []
        for metric, evaluator, mapping in plan.evaluators:
            data = {key: response.response if column == COMPLETION else record[column]
                    for key, column in mapping.items()}
            evaluation.append({"metric": metric, "result": _json_value(evaluator.evaluate(data))})
        return {
            "experiment_id": plan.experiment_id,
            "dataset_record_id": record["id"],
            "completion": response.response,
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
            "latency_ms": response.latency_ms,
            # A list of {"metric", "result"}, stored as JSON: what the studio averages.
            "evaluation": evaluation,
            "created_at": plan.created_at,
        }

    # --- tracing ----------------------------------------------------------

    def _trace(self, plan: _Plan, summary: List[Any]) -> str:
        from promptlab.sqlite import IntegrityError

        try:
            self.tracer.trace_experiment(plan.config, summary)  # one transaction
        except IntegrityError:
            raise ValueError(f"An experiment named {plan.experiment_id!r} exists already; "
                             "nothing of this run was stored.") from None
        log.info("Experiment %s traced: %d records.", plan.experiment_id, len(summary))
        return plan.experiment_id


async def _awaited(value: Any) -> Any:
    return await value
