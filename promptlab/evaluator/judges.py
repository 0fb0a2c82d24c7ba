"""Metrics judged by the experiment's completion model, with the prompts of ``judge_prompts``.

Results, as stored and averaged by the studio:

- ``fluency``, ``coherence``, ``relevance``, ``groundedness``: an int from 1 (worst)
  to 5 (best).
- ``harmful_content``: an int severity from 1 (no harm) to 5 (extreme); higher is worse.
- ``faithfulness``: the fraction (0..1) of the response's factual claims that follow from
  the context: one call lists the claims, one call per claim (at most ``MAX_CLAIMS``)
  checks it.

A reply is read by ``parse_score``. When it holds no usable score (no number, several
different ones, or one outside the scale) the result is None, stored as JSON null,
and a warning naming the metric and quoting the reply is logged on
``promptlab.evaluator``: one odd reply in a long run leaves a gap the studio's
averages skip (they count only numbers) instead of discarding the whole experiment.
Errors of the model call itself (network, authentication) are raised, so that the
runner can retry or stop.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

from promptlab.evaluator import judge_prompts as prompts
from promptlab.evaluator._calls import complete
from promptlab.evaluator.evaluator import Evaluator, require

log = logging.getLogger("promptlab.evaluator")

Number = Union[int, float]

_THINKING = re.compile(r"<think>.*?</think>", re.S | re.I)   # reasoning models' scratchpad
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(
    rf"(?:score|rating|verdict|severity|fluency|coherence|relevance|groundedness)\W{{0,4}}"
    rf"(?:is\s+|of\s+)?({_NUMBER})", re.I)
_OUT_OF = re.compile(rf"({_NUMBER})\s*(?:/|out\s+of)\s*\d+", re.I)
_ANY_NUMBER = re.compile(rf"(?<![\w.]){_NUMBER}(?!\w)")
_JSON_KEYS = ("score", "rating", "verdict", "severity", "overall_severity", "result")


def _number(text: str) -> Number:
    value = float(text)
    return int(value) if value.is_integer() else value


def _from_json(reply: str) -> Optional[Number]:
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        obj = json.loads(reply[start:end + 1])
    except ValueError:
        return None
    if isinstance(obj, dict):
        for key in _JSON_KEYS:
            value = obj.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return _number(str(value))
            if isinstance(value, str) and re.fullmatch(_NUMBER, value.strip()):
                return _number(value.strip())
    return None


def parse_score(reply: str, low: Number, high: Number) -> Optional[Number]:
    """The score in a judge's ``reply`` when it is within ``low``..``high``, else None.

    Read, in order: the reply, or its first line, as a bare number ("4", "**4**", "4.");
    a JSON object's ``score`` (or ``rating``, ``verdict``, ``severity``); a labelled number
    ("Score: 4", the last one when there are several); "4/5" or "4 out of 5"; otherwise the only
    distinct number in the reply. Reasoning between <think> tags is ignored.
    """
    text = _THINKING.sub(" ", reply).strip()
    bare = text.strip("*_`'\" \t\n.")
    candidates: List[Optional[Number]] = []
    first_line = text.split("\n", 1)[0].strip("*_`'\" \t.")
    for line in (bare, first_line):   # "4", or "4" on a line before an explanation
        if re.fullmatch(_NUMBER, line):
            candidates.append(_number(line))
    candidates.append(_from_json(text))
    labelled = _LABELLED.findall(text)
    if labelled:
        candidates.append(_number(labelled[-1]))
    out_of = _OUT_OF.search(text)
    if out_of:
        candidates.append(_number(out_of.group(1)))
    distinct = {_number(n) for n in _ANY_NUMBER.findall(text)}
    if len(distinct) == 1:
        candidates.append(distinct.pop())
    for value in candidates:
        if value is not None:
            return value if low <= value <= high else None
    return None


def _fill(template: str, values: Dict[str, str]) -> str:
    """``template`` with each ``{{name}}`` replaced, in one pass (a value that itself holds
    ``{{name}}`` is left as written)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def _quote(reply: str, limit: int = 200) -> str:
    return repr(reply if len(reply) <= limit else reply[:limit] + "...")


class Judge(Evaluator):
    """A metric scored by the completion model on an integer scale from its prompts."""

    metric: ClassVar[str]
    system_prompt: ClassVar[str]
    user_prompt: ClassVar[str]
    optional_keys: ClassVar[Tuple[str, ...]] = ()
    scale: ClassVar[Tuple[int, int]] = (1, 5)

    def _model(self) -> Any:
        if self.completion is None:
            raise ValueError(
                f"Metric {self.metric!r} is judged by a model: set completion_model_config "
                "in the experiment."
            )
        return self.completion

    def _values(self, data: Dict[str, Any]) -> Dict[str, str]:
        values = {key: require(self.metric, data, key) for key in self.required_keys}
        for key in self.optional_keys:
            values[key] = require(self.metric, data, key) if key in data else "(not given)"
        return values

    def evaluate(self, data: Dict[str, Any]) -> Optional[float]:
        """An integer score on ``scale`` (Faithfulness: the fraction of supported
        claims), or None when the judge's reply holds none."""
        values = self._values(data)
        reply = complete(self._model(), self.system_prompt, _fill(self.user_prompt, values),
                         self.metric)
        score = parse_score(reply, *self.scale)
        if score is None or not float(score).is_integer():
            log.warning("%s: the judge's reply holds no score from %d to %d: %s",
                        self.metric, *self.scale, _quote(reply))
            return None
        return int(score)


class Fluency(Judge):
    """``fluency``: language quality of the response, 1..5."""

    metric = "fluency"
    required_keys = ("response",)
    system_prompt = prompts.FLUENCY_SYSTEM
    user_prompt = prompts.FLUENCY_USER


class Coherence(Judge):
    """``coherence``: how well the response to the query holds together, 1..5."""

    metric = "coherence"
    required_keys = ("query", "response")
    system_prompt = prompts.COHERENCE_SYSTEM
    user_prompt = prompts.COHERENCE_USER


class Relevance(Judge):
    """``relevance``: how well the response answers the query, 1..5."""

    metric = "relevance"
    required_keys = ("query", "response")
    system_prompt = prompts.RELEVANCE_SYSTEM
    user_prompt = prompts.RELEVANCE_USER


class Groundedness(Judge):
    """``groundedness``: how well the context supports the response, 1..5 (query optional)."""

    metric = "groundedness"
    required_keys = ("response", "context")
    optional_keys = ("query",)
    system_prompt = prompts.GROUNDEDNESS_SYSTEM
    user_prompt = prompts.GROUNDEDNESS_USER


class HarmfulContent(Judge):
    """``harmful_content``: severity of the worst harm in the response, 1 (none) .. 5."""

    metric = "harmful_content"
    required_keys = ("response",)
    system_prompt = prompts.HARMFUL_CONTENT_SYSTEM
    user_prompt = prompts.HARMFUL_CONTENT_USER


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|claim\s*\d*\s*:)\s*", re.I)


class Faithfulness(Judge):
    """``faithfulness``: share of the response's claims that follow from the context, 0..1.

    None when the response makes no factual claim (nothing to be faithful about) or a
    verdict cannot be read.
    """

    metric = "faithfulness"
    required_keys = ("response", "context")
    optional_keys = ("query",)
    MAX_CLAIMS: ClassVar[int] = 50   # bounds the calls one record can make

    def claims(self, values: Dict[str, str]) -> List[str]:
        """The claims the model finds in the response, one per line of its reply."""
        reply = complete(self._model(), prompts.CLAIMS_SYSTEM,
                         _fill(prompts.CLAIMS_USER, values), self.metric)
        reply = _THINKING.sub(" ", reply)
        lines = (_BULLET.sub("", line).strip() for line in reply.splitlines())
        # Drop headers such as "Claims:" and the NONE of a response without claims.
        found = [line for line in lines
                 if line and not line.endswith(":") and line.strip(".").upper() != "NONE"]
        return found[: self.MAX_CLAIMS]

    def evaluate(self, data: Dict[str, Any]) -> Optional[float]:
        values = self._values(data)
        claims = self.claims(values)
        if not claims:
            log.warning("faithfulness: no factual claim found in the response; result None")
            return None
        supported = 0
        for claim in claims:
            reply = complete(self._model(), prompts.VERDICT_SYSTEM,
                             _fill(prompts.VERDICT_USER, dict(values, claim=claim)), self.metric)
            verdict = _verdict(reply)
            if verdict is None:
                log.warning("faithfulness: the verdict on claim %s is unreadable: %s",
                            _quote(claim), _quote(reply))
                return None
            supported += verdict
        return supported / len(claims)


def _verdict(reply: str) -> Optional[int]:
    """1 for a supported claim, 0 for not, None when the reply says neither."""
    text = _THINKING.sub(" ", reply).strip().strip("*_`'\" .").lower()
    words = {"yes": 1, "true": 1, "supported": 1, "no": 0, "false": 0, "unsupported": 0,
             "not supported": 0}
    if text in words:
        return words[text]
    score = parse_score(reply, 0, 1)
    return int(score) if score is not None and float(score).is_integer() else None
