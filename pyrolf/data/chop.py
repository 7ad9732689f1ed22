"""A continuous recording cut into overlapping windows, and windowed results merged back.

``chop`` cuts ``(time, ...)`` into windows of ``window_bins`` bins that start every
``window_bins - overlap_bins`` bins; where the last regular window would stop short of the end,
one more window is placed flush with the end (so it overlaps its neighbour by more), and every
bin lies in at least one window.

``merge`` undoes it for anything computed per window (rates, latents, intervals): each bin is
taken from the window whose centre is nearest to the bin's centre, a tie going to the later
window. Between two neighbouring windows that is a cut in the middle of their overlap (half of it
from each side, as nlb_tools' chop-and-merge does), so the bins a model sees with the least
context, at the edges of its window, are never the ones kept. The rule holds for any overlap, also
more than half a window, where a bin may lie in three or more windows. A signal chopped from a
continuous one merges back to it exactly.
"""

from __future__ import annotations

import numpy as np


def window_starts(n_time: int, window_bins: int, overlap_bins: int) -> np.ndarray:
    """First bins ``(windows,)`` of the windows :func:`chop` cuts from ``n_time`` bins: every
    ``window_bins - overlap_bins`` bins from 0, plus ``n_time - window_bins`` where that is
    needed to reach the end. Strictly increasing; the last window ends at ``n_time``.

    Raises:
        ValueError: ``window_bins < 1``, ``overlap_bins`` outside ``[0, window_bins)`` or
            ``n_time < window_bins``.
    """
    if window_bins < 1 or not 0 <= overlap_bins < window_bins:
        raise ValueError(f"need window_bins >= 1 and 0 <= overlap_bins < window_bins, got "
                         f"{window_bins} and {overlap_bins}")
    if n_time < window_bins:
        raise ValueError(f"{n_time} bins are fewer than one window of {window_bins}")
    starts = np.arange(0, n_time - window_bins + 1, window_bins - overlap_bins)
    if starts[-1] + window_bins < n_time:
        starts = np.append(starts, n_time - window_bins)
    return starts


def chop(signal: np.ndarray, window_bins: int, overlap_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``signal`` ``(time, ...)`` into overlapping windows.

    Returns:
        ``(windows, starts)``: ``windows`` ``(n, window_bins, ...)`` (copies), ``starts``
        ``(n,)`` their first bins (see :func:`window_starts`).
    """
    signal = np.asarray(signal)
    starts = window_starts(signal.shape[0], window_bins, overlap_bins)
    return np.stack([signal[start:start + window_bins] for start in starts]), starts


def merge(windows: np.ndarray, starts: np.ndarray, n_time: int, observed: int | None = None
          ) -> np.ndarray:
    """One series ``(n_time, ...)`` from ``windows`` ``(n, window_bins, ...)`` that start at bins
    ``starts`` ``(n,)``: each bin from the window whose centre is nearest (module docstring).
    With ``observed`` (fewer than ``window_bins``: the rest of each window are forward bins,
    predicted, never seen by the encoder) the centres are those of the observed bins, and a bin
    comes from a window's forward bins only where no window observes it.

    Raises:
        ValueError: ``starts`` not one per window, or as :func:`merge_cuts`.
    """
    windows = np.asarray(windows)
    if np.shape(starts) != windows.shape[:1]:
        raise ValueError(f"window starts {np.asarray(starts).tolist()} do not cover the "
                         f"{len(windows)} windows: one start per window")
    cuts = merge_cuts(starts, n_time, windows.shape[1], observed)
    merged = np.empty((n_time, *windows.shape[2:]), dtype=windows.dtype)
    merge_into(merged, windows, 0, starts, cuts)
    return merged


def merge_cuts(starts: np.ndarray, n_time: int, window_bins: int, observed: int | None = None
               ) -> np.ndarray:
    """Where :func:`merge` cuts the series ``(windows + 1,)``: window ``j`` gives bins
    ``cuts[j]`` to ``cuts[j + 1]``.

    Raises:
        ValueError: ``starts`` not strictly increasing from 0, leaving a gap between windows of
            ``window_bins`` bins, or not ending at ``n_time``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if (starts.ndim != 1 or not len(starts) or starts[0] != 0
            or starts[-1] + window_bins != n_time or np.any(np.diff(starts) <= 0)
            or np.any(np.diff(starts) > window_bins)):
        raise ValueError(f"window starts {starts.tolist()} of windows of {window_bins} bins do not "
                         f"cover 0..{n_time} in increasing order without gaps")
    # bin t goes to the later of windows j, j + 1 once t + 1/2 >= the midpoint of their centres,
    # but not before j + 1 starts nor after j ends
    seen = window_bins if observed is None else observed
    middles = np.clip((starts[:-1] + starts[1:] + seen) // 2, starts[1:], starts[:-1] + window_bins)
    return np.concatenate([[0], middles, [n_time]])


def merge_into(merged: np.ndarray, windows: np.ndarray, first: int, starts: np.ndarray,
               cuts: np.ndarray) -> None:
    """Put the bins :func:`merge` takes from ``windows`` ``(k, window_bins, ...)``, the windows
    ``first`` to ``first + k - 1`` of ``starts``, into ``merged`` ``(n_time, ...)`` (``cuts``:
    :func:`merge_cuts`): windows merged as they come, a few at a time, none kept."""
    for index, window in enumerate(windows, first):
        begin, end, start = cuts[index], cuts[index + 1], starts[index]
        merged[begin:end] = window[begin - start:end - start]
