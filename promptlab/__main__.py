"""``python -m promptlab``: the same program as the ``promptlab`` command."""

from promptlab.cli import main

raise SystemExit(main())
