"""``python -m bulk_import.sandbox``: serve the sandbox (the options are in ``sandbox/cli.py``)."""

from bulk_import.sandbox.cli import main

if __name__ == "__main__":
    main()
