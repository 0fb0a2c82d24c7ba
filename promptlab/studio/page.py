"""The studio's one page (``static/index.html``) and the Content-Security-Policy
that lets only its own inline script and style run."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from typing import Tuple

from promptlab.studio.auth import StudioError

# The paths that answer with the page (its views are chosen in the page).
PAGE_PATHS = ("/", "/index.html", "/experiments", "/prompts", "/datasets")


def load_page() -> Tuple[bytes, str]:
    """The page and its Content-Security-Policy (hashes of its inline script and style,
    so nothing else can run or style it)."""
    try:
        page = resources.files("promptlab.studio").joinpath("static/index.html").read_bytes()
    except (OSError, ModuleNotFoundError):
        raise StudioError("the studio page (promptlab/studio/static/index.html) is missing "
                          "from this installation; reinstall PromptLab.") from None

    def hashes(tag: bytes) -> str:
        blocks = re.findall(rb"<" + tag + rb"(?:\s[^>]*)?>(.*?)</" + tag + rb">", page,
                            re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b).digest()).decode()}'"
                        for b in blocks)

    csp = (f"default-src 'none'; script-src {hashes(b'script')}; "
           f"style-src {hashes(b'style')}; img-src 'self' data:; connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, csp
