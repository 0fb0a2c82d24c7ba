"""The stored formats: every text PromptLab writes into a column and reads back.

One encoder and one decoder per format, nowhere else:

- a prompt template's ``asset_binary``: the original PromptLab's ``<<system>>`` /
  ``<<user>>`` text (whitespace included, so the original reads ours);
- a dataset's ``asset_binary``: ``{"file_path": ...}`` as JSON;
- an experiment's ``model`` and ``asset`` columns: JSON objects naming the models,
  the prompt template and the dataset;
- an experiment result's ``evaluation``: a JSON list of ``{"metric", "result"}``
  (a JSON object ``{metric: result}`` is read too).

SQL that reads inside these formats (``json_extract`` over ``model``/``asset``)
lives in ``promptlab.store`` beside the queries and names its paths from here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

# json and dataclasses are imported by the functions that use them: opening a
# tracer and reading experiments (which import this module) need neither.

# --- prompt templates ------------------------------------------------------------

# The original's text: "\n<12 spaces><<system>>\n<16>{system}\n<12><<user>>\n<16>{user}\n<8>".
_HEAD = "\n            <<system>>\n                "
_MIDDLE = "\n            <<user>>\n                "
_TAIL = "\n        "
# Any other spelling of the two markers (hand-written, or written by other tools);
# compiled on first use, so that importing this module does not load re.
_LOOSE_PATTERN = r"<<system>>\s*(.*?)\s*<<user>>\s*(.*?)\s*\Z"


def encode_prompt_template(system_prompt: Optional[str], user_prompt: Optional[str]) -> str:
    """The stored text of a prompt template (the original PromptLab's format)."""
    return f"{_HEAD}{system_prompt}{_MIDDLE}{user_prompt}{_TAIL}"


def decode_prompt_template(text: Optional[str]) -> Tuple[str, str]:
    """``(system_prompt, user_prompt)`` of a stored template, exactly as written;
    ``("", "")`` for None. ValueError when the text has no ``<<system>>`` and
    ``<<user>>`` parts."""
    if text is None:
        return "", ""
    if text.startswith(_HEAD) and text.endswith(_TAIL) and _MIDDLE in text:
        system, user = text[len(_HEAD):len(text) - len(_TAIL)].split(_MIDDLE, 1)
        return system, user
    import re

    match = re.search(_LOOSE_PATTERN, text, re.DOTALL)  # re caches the compiled pattern
    if match is None:
        raise ValueError("The stored prompt template has no <<system>> and <<user>> parts.")
    return match.group(1), match.group(2)


def display_prompt_template(text: Optional[str]) -> Tuple[str, str]:
    """The prompts of a stored template for showing (the studio): stripped, and a
    text without the markers is all user prompt. Never raises."""
    if not text:
        return "", ""
    try:
        system, user = decode_prompt_template(text)
    except ValueError:
        return "", text.strip()
    return system.strip(), user.strip()


# --- datasets ------------------------------------------------------------------------


def encode_dataset(file_path: Optional[str]) -> str:
    """The stored text of a dataset asset: where its file is."""
    import json

    return json.dumps({"file_path": file_path})


def dataset_file_path(text: Optional[str]) -> Optional[str]:
    """The file a stored dataset names, or None when the text names none (not
    JSON, no ``file_path``, or not a string)."""
    value = _get(_json(text), "file_path")
    return value if isinstance(value, str) else None


# --- experiments -------------------------------------------------------------------

# The JSON paths of the experiment columns (what the SQL reads with json_extract).
MODEL_PATHS = {
    "completion_model": "$.completion_model_config.name",
    "embedding_model": "$.embedding_model_config.name",
}
ASSET_KEYS = ("prompt_template_name", "prompt_template_version", "dataset_name",
              "dataset_version")


def _model_config(config: Any) -> Optional[Dict[str, Any]]:
    """A model config as a JSON-ready dict, with the model instance left out (None).

    The API key is not stored (None): the original PromptLab wrote it in plain text
    into experiments.model, where anyone who can read the file or the studio sees it.
    """
    if config is None:
        return None
    data = config.model_dump()  # its fields, as they are (none of them is a model)
    data["model"] = None
    data["api_key"] = None
    return data


def encode_experiment(config: Any) -> Tuple[str, str]:
    """The ``model`` and ``asset`` texts of an ``ExperimentConfig``."""
    import json

    model = {
        "completion_model_config": _model_config(config.completion_model_config),
        "embedding_model_config": _model_config(config.embedding_model_config),
    }
    template = config.prompt_template
    asset = {
        "prompt_template_name": template.name if template else None,
        "prompt_template_version": template.version if template else None,
        "dataset_name": config.dataset.name,
        "dataset_version": config.dataset.version,
    }
    return json.dumps(model), json.dumps(asset)


def decode_experiment(model: Optional[str], asset: Optional[str]) -> Dict[str, Any]:
    """The names an experiment's ``model`` and ``asset`` texts hold (None for what
    is missing or not JSON): completion_model, embedding_model and ``ASSET_KEYS``."""
    model_data, asset_data = _json(model), _json(asset)
    out = {}
    for key, path in MODEL_PATHS.items():
        out[key] = _get(model_data, *path[2:].split("."))
    for key in ASSET_KEYS:
        out[key] = _get(asset_data, key)
    return out


# --- evaluations ---------------------------------------------------------------------


def decode_evaluation(text: Any) -> List[Dict[str, Any]]:
    """An evaluation as a list of ``{"metric", "result"}`` (from either stored form)."""
    value = _json(text) if isinstance(text, str) else text
    if isinstance(value, list):
        return [{"metric": item.get("metric"), "result": item.get("result")}
                for item in value if isinstance(item, dict)]
    if isinstance(value, dict):
        return [{"metric": key, "result": result} for key, result in value.items()]
    return []


# --- helpers -------------------------------------------------------------------------


def _json(text: Any) -> Any:
    """Parsed JSON text, or None when it is not JSON."""
    import json

    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
