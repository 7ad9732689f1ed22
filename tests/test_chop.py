"""Chopping a continuous signal into overlapping windows and merging the windows back."""

import numpy as np
import pytest

from pyrolf.data.chop import chop, merge, window_starts

# (n_time, window_bins, overlap_bins): overlaps of none, under, exactly and over half a window,
# the largest possible one, lengths that fit the hop and ones that need an end-flush window
CASES = [(100, 10, 0), (100, 10, 2), (101, 10, 2), (100, 10, 5), (107, 10, 6), (100, 10, 9),
         (10, 10, 3), (11, 10, 9), (53, 7, 4), (1000, 100, 20), (999, 100, 80), (5, 1, 0)]


def random_cases(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        window = int(rng.integers(1, 40))
        yield int(rng.integers(window, 300)), window, int(rng.integers(0, window))


@pytest.mark.parametrize("n_time, window_bins, overlap_bins", CASES + list(random_cases()))
def test_chop_then_merge_gives_the_signal_back_and_covers_every_bin(n_time, window_bins,
                                                                     overlap_bins):
    signal = np.random.default_rng(n_time).standard_normal((n_time, 3, 2))
    windows, starts = chop(signal, window_bins, overlap_bins)
    assert windows.shape == (len(starts), window_bins, 3, 2)
    assert starts[0] == 0 and starts[-1] + window_bins == n_time
    assert np.all(np.diff(starts) > 0)
    assert np.all(np.diff(starts)[:-1] == window_bins - overlap_bins)  # regular but the last
    covered = np.zeros(n_time, dtype=int)
    for start in starts:
        covered[start:start + window_bins] += 1
    assert covered.min() >= 1
    np.testing.assert_array_equal(merge(windows, starts, n_time), signal)


@pytest.mark.parametrize("n_time, window_bins, overlap_bins", CASES)
def test_merge_takes_each_bin_from_the_window_whose_centre_is_nearest(n_time, window_bins,
                                                                       overlap_bins):
    starts = window_starts(n_time, window_bins, overlap_bins)
    # every window holds its own index: the merged series says which window each bin came from
    labels = np.repeat(np.arange(len(starts))[:, None], window_bins, axis=1)
    chosen = merge(labels, starts, n_time)
    centres = starts + window_bins / 2
    for t in range(n_time):
        inside = np.flatnonzero((starts <= t) & (t < starts + window_bins))
        distance = np.abs(centres[inside] - (t + 0.5))
        nearest = inside[distance == distance.min()].max()  # a tie goes to the later window
        assert chosen[t] == nearest, t


@pytest.mark.parametrize("n_time, window_bins, overlap_bins", CASES)
@pytest.mark.parametrize("forward", [0, 1, 3])
def test_with_forward_bins_a_bin_is_predicted_only_where_no_window_observes_it(
        n_time, window_bins, overlap_bins, forward):
    """The nearest observed centre among the windows that observe the bin; where none does, a
    window that predicts it (the recording's last bins, or gaps the overlap leaves)."""
    if forward >= window_bins:
        return
    observed = window_bins - forward
    starts = window_starts(n_time, window_bins, overlap_bins)
    labels = np.repeat(np.arange(len(starts))[:, None], window_bins, axis=1)
    positions = np.repeat(np.arange(window_bins)[None], len(starts), axis=0)
    chosen = merge(labels, starts, n_time, observed)
    position = merge(positions, starts, n_time, observed)
    centres = starts + observed / 2
    for t in range(n_time):
        seeing = np.flatnonzero((starts <= t) & (t < starts + observed))
        assert starts[chosen[t]] + position[t] == t  # a bin of the window it is said to be from
        if len(seeing):
            distance = np.abs(centres[seeing] - (t + 0.5))
            assert chosen[t] == seeing[distance == distance.min()].max(), t
        else:
            assert position[t] >= observed
    if forward == 0:  # all observed: as without
        np.testing.assert_array_equal(chosen, merge(labels, starts, n_time))


def test_more_than_half_overlap_keeps_each_windows_middle():
    """Windows of 10 every 3 bins (overlap 7): a bin lies in up to 4 windows, and each window
    gives the 3 bins around its middle (the first and last windows also their outer edges)."""
    starts = window_starts(30, 10, 7)
    assert starts.tolist() == [0, 3, 6, 9, 12, 15, 18, 20]
    labels = np.repeat(np.arange(len(starts))[:, None], 10, axis=1)
    assert merge(labels, starts, 30).tolist() == (
        [0] * 6 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3 + [6] * 3 + [7] * 6)


def test_merge_refuses_windows_that_do_not_cover_the_series():
    windows = np.zeros((3, 4))  # 3 windows of 4 bins
    for starts, n_time in [([0, 4, 8], 13), ([0, 5, 8], 12), ([1, 4, 8], 12), ([0, 4, 4], 12),
                           ([0, 4], 8)]:
        with pytest.raises(ValueError, match="do not cover"):
            merge(windows, starts, n_time)


@pytest.mark.parametrize("n_time, window_bins, overlap_bins", [(5, 10, 0), (20, 0, 0),
                                                               (20, 5, 5), (20, 5, -1)])
def test_window_starts_refuses_impossible_windows(n_time, window_bins, overlap_bins):
    with pytest.raises(ValueError):
        window_starts(n_time, window_bins, overlap_bins)
