"""``python -m bulk_import``: the same as the ``bulk-import`` command."""

from .cli import main

raise SystemExit(main())
