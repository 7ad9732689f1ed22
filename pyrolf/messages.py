"""What pyrolf tells the user that is no error (errors are one line each, from the CLI)."""

from __future__ import annotations

import sys


def note(text: str) -> None:
    """Tell the user, on stderr, something worth knowing that is no error."""
    print(f"note: {text}", file=sys.stderr)
