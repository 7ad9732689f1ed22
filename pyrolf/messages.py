"""What pyrolf tells the user that is no error (errors are one line each, from the CLI)."""

from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager


_QUIET = []  # a block of :func:`notes_kept_back` runs


def note(text: str) -> None:
    """Tell the user, on stderr, something worth knowing that is no error (not within
    :func:`notes_kept_back`)."""
    if not _QUIET:
        print(f"note: {text}", file=sys.stderr)


def warning(text: str) -> None:
    """Tell the user, on stderr, that a result is not what it should be (always said)."""
    print(f"warning: {text}", file=sys.stderr)


@contextmanager
def notes_kept_back():
    """No :func:`note` while the block runs: for data read again that the user has been told
    about (a run's own data, reloaded to infer others)."""
    _QUIET.append(True)
    try:
        yield
    finally:
        _QUIET.pop()


def few_ids(ids, shown: int = 5, word: str = "ids") -> str:
    """``ids`` (units, trials) named in a message: ``ids a, b, c (and 4 more)`` (``word``: what
    they are, e.g. ``rows``), or ``none``."""
    ids = list(ids)
    if not ids:
        return "none"
    shown += len(ids) == shown + 1  # the last one, not "(and 1 more)"
    more = f" (and {len(ids) - shown} more)" if len(ids) > shown else ""
    return f"{word} " + ", ".join(map(str, ids[:shown])) + more


def typed(path) -> str:
    """``path`` as it is typed in a command a message suggests, so that the command works pasted
    as printed: quoted where a shell would split or expand it (``"my run"``; in single quotes
    where double ones would expand it, as messages put commands in single quotes), and ``./``
    before a relative path that begins with ``-``, which click would take for an option."""
    text = str(path)
    text = "./" + text if text.startswith("-") else text
    quoted = shlex.quote(text)
    if quoted == text or any(sign in text for sign in '"$`\\!'):
        return quoted
    return f'"{text}"'


#: seconds between progress lines where stderr is no terminal (a log file, a batch system's)
LOG_EVERY_S = 30.0


def progress_bar(**options):
    """A tqdm progress bar on stderr (``options`` are tqdm's: ``total``, ``desc``, ``unit``,
    ``disable``, ...): redrawn in place on a terminal, a widget in a notebook, and elsewhere (a
    log file, a pipe) one plain line every :data:`LOG_EVERY_S` seconds and one at the end, with
    no carriage returns or bar characters a log cannot show."""
    from tqdm.auto import tqdm

    if "notebook" in tqdm.__module__ or sys.stderr.isatty():
        return tqdm(dynamic_ncols=True, **options)
    return tqdm(file=_Lines(sys.stderr), mininterval=LOG_EVERY_S, ascii=True, **options)


class _Lines:
    """A stream that writes each frame tqdm draws as a line of its own, but not a frame of the
    count the line before showed (tqdm draws the last one again when it closes)."""

    def __init__(self, stream):
        self.stream, self.shown = stream, None

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        count = line.partition("[")[0]  # "fit:  50%|#####     | 2/4 ", before the times
        if line and count != self.shown:
            self.stream.write(line + "\n")
            self.shown = count

    def flush(self) -> None:
        self.stream.flush()
