"""Exact continuous percentiles from sorted lists of values.

A report's percentiles (`models.metrics`, `Kind.PERCENTILE`) are read as lists: one statement
gives, per row key and bucket (or per row key and local day, which the report's other parts
then share: `resolvers.metrics.RawReads`), the values of each percentile's value as one list
(`models.sql.listed`). A bucket made of several lists (a week of days, a range of days and
sources) is not merged: the value at a rank is found by bisection over the values, counting in
every list (`at_ranks`), which costs a few bisections per list where a merge would copy and
sort every value.
"""

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import orjson


def values_of_list(listed: Any) -> list[int]:
    """The sorted values of one `models.sql.listed` aggregate: a comma-separated text from
    SQLite, a list from PostgreSQL, None when the group had none."""
    if listed is None:
        return []
    values: list[int] = orjson.loads(f"[{listed}]") if isinstance(listed, str) else list(listed)
    values.sort()
    return values


def at_ranks(lists: Sequence[Sequence[int]], rank: int) -> tuple[int, int | None]:
    """The values at `rank` (from 0) and at the next rank (None past the last) of the values of
    sorted, non-empty `lists` together (ties kept). The first is the smallest integer `x` of
    which more than `rank` values are at most `x`; the next is `x` again when more than
    `rank + 1` are, else the smallest value above `x`."""
    if len(lists) == 1:
        values = lists[0]
        return values[rank], values[rank + 1] if rank + 1 < len(values) else None
    low, high = min(values[0] for values in lists), max(values[-1] for values in lists)
    while low < high:
        middle = (low + high) // 2
        if sum(bisect_right(values, middle) for values in lists) > rank:
            high = middle
        else:
            low = middle + 1
    ends = [bisect_right(values, low) for values in lists]
    if sum(ends) > rank + 1:
        return low, low
    above = [values[end] for values, end in zip(lists, ends, strict=True) if end < len(values)]
    return low, min(above) if above else None


def percentile(lists: Sequence[Sequence[int]], fraction: tuple[int, int]) -> float | None:
    """The continuous percentile `fraction` (numerator, denominator) of the values of sorted
    `lists` together, as PostgreSQL's `percentile_cont`: the values at ranks floor(p * (n - 1))
    and the next, interpolated by the fraction left (integer arithmetic for the rank); None
    when there is no value."""
    lists = [values for values in lists if values]
    count = sum(len(values) for values in lists)
    if not count:
        return None
    numerator, denominator = fraction
    position = (count - 1) * numerator
    at_low, at_next = at_ranks(lists, position // denominator)
    if at_next is None:
        return float(at_low)
    left = (position % denominator) / denominator
    return float(at_low) + (float(at_next) - float(at_low)) * left
