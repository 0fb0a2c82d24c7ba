"""Prompt templates as the experiment runner uses them: ``<column>`` placeholders
found and filled from a dataset record.

The stored text of a template is ``promptlab.store.formats``' to write and read
(``split_prompt_template`` is its decoder, under the name this module had).
"""

from __future__ import annotations

import json
import re
from typing import Any, List, Mapping

from promptlab.store.formats import decode_prompt_template as split_prompt_template

__all__ = ["PLACEHOLDER", "fill", "placeholders", "split_prompt_template"]

# A placeholder is <name> with a name such as a dataset column has; anything else in
# angle brackets (<br>, <a href="...">) is left as it is.
PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_.-]*)>")


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
