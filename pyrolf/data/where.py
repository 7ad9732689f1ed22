"""Rows of a table kept by conditions such as ``outcome=correct`` or ``firing_rate>=0.5``: the
trials an own recording's ``trials_where`` keeps and the units its ``units_where`` keeps.

A condition is ``COLUMN OP VALUE`` with ``OP`` one of ``=``, ``!=``, ``<``, ``<=``, ``>``,
``>=``; a row is kept when it meets every condition. How ``VALUE`` is compared depends on the
column: in a boolean one it is ``true`` or ``false`` (``=``, ``!=``), in a numeric one a number,
in any other it is text compared with each value written as text (``=``, ``!=``). A missing
value meets no condition, as in SQL: a NaN (but ``COLUMN=nan``, while ``COLUMN!=nan`` keeps the
rows that hold a number) and a text's ``None`` (a unit without an electrode). With ``=`` and
``!=`` the value may be a list, ``COLUMN=A,B,C``: a row meets it when its value is one of them
(``=``) or none of them (``!=``), so a text value cannot hold a comma.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.spikes import DataError
from pyrolf.messages import note

#: the comparisons a condition may make, the two-character ones first (the order they are read)
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
ORDERING = (">=", "<=", ">", "<")
SHOWN_VALUES = 10  # values of a column listed in a message


def parse(condition: str) -> tuple[str, str, str]:
    """``(column, operator, value)`` of ``condition``, blanks around each stripped.

    Raises:
        ValueError: no operator, or no column name before it.
    """
    at = min(((condition.find(op), -len(op), op) for op in OPERATORS if op in condition),
             default=None)
    if at is None or not condition[:at[0]].strip():
        raise ValueError(f"{condition!r} is no condition COLUMN=VALUE (or COLUMN OP VALUE with "
                         f"OP one of {' '.join(OPERATORS)}), e.g. outcome=correct")
    start, _, op = at
    return condition[:start].strip(), op, condition[start + len(op):].strip()


def kept(values: np.ndarray, condition: str, option: str, file: str) -> np.ndarray:
    """``(rows,)`` bool: which ``values`` ``(rows,)`` (a column of a table of the file named
    ``file``) meet ``condition`` (module docstring); ``option`` names the setting in messages
    (``--trials-where``).

    Raises:
        DataError: a value that cannot be compared with the column's values (text for a number,
            an ordering of text or of true/false).
    """
    column, op, text = parse(condition)
    said = f"{option} {condition}"
    if op in ORDERING:
        if "," in text:
            raise DataError(f"{said}: a list of values goes with = or != only; give one value")
        return _meets(values, column, op, text, said, file)
    listed = [one.strip() for one in text.split(",")]
    if len(listed) > 1 and not all(listed):
        raise DataError(f"{said}: the list holds an empty value (a stray comma?); give "
                        f"{column}{op}A,B")
    held = [_meets(values, column, "=", one, said, file) for one in listed]
    unheld = [one for one, rows in zip(listed, held) if not rows.any()]
    if unheld and (op == "!=" or len(listed) > 1):  # (one value held nowhere keeps no row: said)
        note(f"{said}: no row of {file}'s table holds {', '.join(unheld)} in {column} (a typo?)")
    anyone = np.logical_or.reduce(held)
    return anyone if op == "=" else ~anyone & ~_missing(values)  # none of them, and a value


def _meets(values: np.ndarray, column: str, op: str, text: str, said: str,
           file: str) -> np.ndarray:
    """``(rows,)`` bool: which ``values`` meet ``column op text`` (one value); ``said``: the
    setting and condition as messages name them."""
    wrong = f"{said}: {column} of {file}"
    if values.dtype == bool:
        if op in ORDERING or text.lower() not in ("true", "false", "1", "0"):
            raise DataError(f"{wrong} is true or false; give {column}=true or {column}=false")
        return _compare(values, op, text.lower() in ("true", "1"))
    if np.issubdtype(values.dtype, np.number):
        try:
            number = float(text)
        except ValueError:
            raise DataError(f"{wrong} holds numbers; give one (e.g. {column}{op}1)") from None
        missing = _missing(values)
        if np.isnan(number):
            if op in ORDERING:
                raise DataError(f"{said}: nan cannot be ordered; give {column}=nan or "
                                f"{column}!=nan")
            return missing if op == "=" else ~missing
        return _compare(values, op, number) & ~missing
    if op in ORDERING:
        raise DataError(f"{wrong} holds text, which {op} cannot order; give {column}=VALUE or "
                        f"{column}!=VALUE")
    return _compare(np.array([str(value) for value in values]), op, text) & ~_missing(values)


def _missing(values: np.ndarray) -> np.ndarray:
    """``(rows,)`` bool: the missing values, which meet no condition (module docstring): NaN in
    a numeric column, ``None`` in a text one, none in a boolean one."""
    if values.dtype == bool:
        return np.zeros(len(values), dtype=bool)
    if np.issubdtype(values.dtype, np.number):
        return np.isnan(values.astype(np.float64))
    return np.array([value is None for value in values], dtype=bool)


def select(values_of, conditions: list[str], rows: int, option: str, file: str,
           what: str = "trial") -> np.ndarray:
    """The rows ``(kept,)`` of a table of ``rows`` rows (each a ``what``, e.g. a trial, of the
    file named ``file``) that meet all ``conditions``; ``values_of(column)`` gives a column
    ``(rows,)``.

    Raises:
        DataError: the conditions keep no row (the message names the first condition that leaves
            none and lists the values its column holds there), or as :func:`kept`.
    """
    keep = np.ones(rows, dtype=bool)
    for condition in conditions:
        column = parse(condition)[0]
        values = values_of(column)
        meets = kept(values, condition, option, file)
        if not (keep & meets).any():
            shown = _listed(np.asarray(values)[keep])
            among = " among the rows the conditions before it keep" if keep.sum() < rows else ""
            raise DataError(f"{option} {condition} keeps no {what} of {file}; {column} holds"
                            f"{among}: {shown}")
        keep &= meets
    return np.flatnonzero(keep)


def _listed(values: np.ndarray) -> str:
    """The first :data:`SHOWN_VALUES` different ``values``, numbers in order (``0.21, 3, 10``),
    other values as text in order, a missing text last as ``(missing)``."""
    if values.dtype.kind in "iuf":
        return ", ".join(f"{value:g}" for value in np.unique(values)[:SHOWN_VALUES])
    missing = _missing(values)
    text = np.unique([str(value) for value in values[~missing]])[:SHOWN_VALUES]
    commas = any("," in value for value in text)  # (then quoted, to be told apart)
    shown = [repr(str(value)) if commas else value for value in text]
    return ", ".join(shown + ["(missing)"] * bool(missing.any()))


def _compare(values: np.ndarray, op: str, value) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return {"=": values == value, "!=": values != value, "<": values < value,
                "<=": values <= value, ">": values > value, ">=": values >= value}[op]
