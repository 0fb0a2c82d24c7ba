"""Prompt templates as the experiment runner reads them: the stored text split back
into its system and user prompts, and ``<column>`` placeholders filled from a
dataset record.

The stored text is written by the tracer (``PROMPT_TEMPLATE_BINARY`` in
``promptlab.tracer.local_tracer``, the original's format); this reads it back.
"""

from __future__ import annotations

import json
import re
from typing import Any, List, Mapping, Optional, Tuple

# The original's format: "\n<12 spaces><<system>>\n<16>{system}\n<12><<user>>\n<16>{user}\n<8>".
_HEAD = "\n            <<system>>\n                "
_MIDDLE = "\n            <<user>>\n                "
_TAIL = "\n        "
# Any other spelling of the two markers (hand-written or from other tools).
_LOOSE = re.compile(r"<<system>>\s*(.*?)\s*<<user>>\s*(.*?)\s*\Z", re.DOTALL)
# A placeholder is <name> with a name such as a dataset column has; anything else in
# angle brackets (<br>, <a href="...">) is left as it is.
PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_.-]*)>")


def split_prompt_template(text: Optional[str]) -> Tuple[str, str]:
    """``(system_prompt, user_prompt)`` of a stored template; ``("", "")`` for None."""
    if text is None:
        return "", ""
    if text.startswith(_HEAD) and text.endswith(_TAIL) and _MIDDLE in text:
        system, user = text[len(_HEAD):len(text) - len(_TAIL)].split(_MIDDLE, 1)
        return system, user
    match = _LOOSE.search(text)
    if match is None:
        raise ValueError("The stored prompt template has no <<system>> and <<user>> parts.")
    return match.group(1), match.group(2)


def placeholders(*prompts: str) -> List[str]:
    """The placeholder names used in the prompts, in order of first use."""
    seen: List[str] = []
    for prompt in prompts:
        for name in PLACEHOLDER.findall(prompt):
            if name not in seen:
                seen.append(name)
    return seen


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def fill(prompt: str, record: Mapping[str, Any]) -> str:
    """``prompt`` with every ``<column>`` replaced by the record's value (KeyError for a
    column the record lacks; the runner checks every record before the first call)."""
    return PLACEHOLDER.sub(lambda m: _text(record[m.group(1)]), prompt)
