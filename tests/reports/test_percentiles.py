"""The order statistics behind every percentile metric (`resolvers.percentiles`): a value at a
rank of several sorted lists taken together, found by bisection without merging them, and the
continuous percentile interpolated between two ranks. The reports' percentiles are checked
against hand-worked values in test_summary.py and test_service_levels.py."""

from itertools import chain

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolvers.percentiles import at_ranks, percentile, values_of_list

# Lists as a report reads them: a source's values of one day, sorted, ties within and across
# lists, some empty, negative values allowed (nothing in the bisection assumes >= 0).
LISTS = st.lists(st.lists(st.integers(-50, 400)).map(sorted), min_size=1, max_size=6)


@given(LISTS)
def test_the_values_at_each_rank_and_the_next_are_those_of_the_lists_merged(
    lists: list[list[int]],
) -> None:
    merged = sorted(chain.from_iterable(lists))
    found = [values for values in lists if values]
    assert [at_ranks(found, rank) for rank in range(len(merged))] == [
        (value, merged[rank + 1] if rank + 1 < len(merged) else None)
        for rank, value in enumerate(merged)
    ]


def _defined(values: list[int], numerator: int, denominator: int) -> float:
    """percentile_cont as PostgreSQL documents it, over the merged values."""
    merged = sorted(values)
    position = (len(merged) - 1) * numerator / denominator
    low = int(position)
    if low + 1 == len(merged):
        return float(merged[low])
    return merged[low] + (merged[low + 1] - merged[low]) * (position - low)


@given(LISTS, st.sampled_from([(1, 2), (9, 10), (1, 4), (99, 100)]))
def test_a_percentile_of_the_lists_is_that_of_their_values(
    lists: list[list[int]], fraction: tuple[int, int]
) -> None:
    values = list(chain.from_iterable(lists))
    found = percentile(lists, fraction)
    if not values:
        assert found is None
    else:
        assert found == pytest.approx(_defined(values, *fraction), rel=1e-12, abs=1e-9)


def test_hand_worked_percentiles() -> None:
    # 60 120 300 900: the median between 120 and 300; p90 at rank 2.7, 300 + 0.7 * 600.
    assert percentile([[120, 900], [60, 300]], (1, 2)) == 210.0
    assert percentile([[120, 900], [], [60, 300]], (9, 10)) == 300 + 0.7 * 600
    assert percentile([[], []], (1, 2)) is None
    assert percentile([[45]], (9, 10)) == 45.0  # one value is every percentile
    assert percentile([[5, 5], [5]], (1, 2)) == 5.0  # ties


def test_lists_as_each_engine_gives_them() -> None:
    assert values_of_list("300,60,120") == [60, 120, 300]  # SQLite's group_concat, unsorted
    assert values_of_list([300, 60]) == [60, 300]  # PostgreSQL's array_agg
    assert values_of_list(None) == []  # no value in the group
    assert values_of_list("-5") == [-5]
