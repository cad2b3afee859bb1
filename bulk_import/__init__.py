"""bulk-import: import BYO phone numbers from a spreadsheet into SigmaMind, exactly once.

The stages, one module each::

    load -> validate -> submit -> record        runner wires them; cli parses flags

The public, callable surface is re-exported here.
"""

__version__ = "0.1.0"
