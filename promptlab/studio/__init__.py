"""PromptLab Studio: a web page and JSON API over one PromptLab database.

``promptlab studio start -d FILE`` runs it (``promptlab.studio.server.run``). The
server is the standard library's threading HTTP server, the page one self-contained
file (``static/index.html``), and the API keeps the routes of the original studio
(``promptlab.studio.api``).
"""

from promptlab.studio.api import StudioApp, StudioConfig
from promptlab.studio.server import StudioServer, make_server, run

__all__ = ["StudioApp", "StudioConfig", "StudioServer", "make_server", "run"]
