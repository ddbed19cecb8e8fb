"""The exit codes of the ``refindex`` commands, in one place.

0, 1, 2 and 130 mean the same for every command; 3 and 4 say what a command found, and each
command that uses them documents which (``scan``: ``PARTIAL``, ``LEFT_OUT``; ``validate``:
``MISMATCH``, ``UNCHECKED``).
"""

OK = 0
ERROR = 1  # a RefindexError, one line on stderr (or, as a bug, any other exception)
USAGE = 2  # bad arguments or options
PARTIAL = 3  # scan of many sources: some members failed, the others are kept
LEFT_OUT = 4  # scan: indexed, but arrays were left out (each reported, with why)
MISMATCH = 3  # validate: a source is missing, resized or changed, or a sampled chunk failed
UNCHECKED = 4  # validate: a source could not be checked
INTERRUPTED = 130  # Ctrl-C
