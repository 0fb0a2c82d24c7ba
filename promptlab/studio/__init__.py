"""PromptLab Studio: a web page and JSON API over one PromptLab database.

The studio is a WSGI application (``promptlab.studio.wsgi``: ``make_app(db_file)``,
or ``application`` for ``$PROMPTLAB_STUDIO_DB``) that any WSGI server can carry.
``promptlab studio start -d FILE`` serves it with the standard library's threading
HTTP server (``promptlab.commands.studio.run``). The page is one self-contained file
(``static/index.html``), and the API keeps the routes of the original studio
(``promptlab.studio.routes``; ``promptlab.studio.app`` says where each part is).
"""

from promptlab.commands.studio import run
from promptlab.studio.app import StudioApp
from promptlab.studio.config import StudioConfig
from promptlab.studio.server import StudioServer, make_server
from promptlab.studio.wsgi import StudioWSGI, make_app

__all__ = ["StudioApp", "StudioConfig", "StudioServer", "StudioWSGI", "make_app",
           "make_server", "run"]
