"""``python -m bulk_import``: the same as the ``bulk-import`` command."""

from .cli import console

console()
