"""Errors the person running a command can act on.

A `UserError` says what is wrong and what to do in its message; the `mtf` command prints it
as one line and exits 2 (mtf/cli.py). Anything else is unexpected and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message is all a person needs: no traceback."""
