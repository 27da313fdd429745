"""Condition orders for within-subject designs: Williams squares, balanced for first-order carry-over.

A Williams design (Williams 1949) is a set of orders of k conditions in which every condition follows every
other condition equally often, so a condition's lingering effect on the next period is spread evenly over
the conditions. It exists for every k: for even k one k × k Latin square suffices; for odd k no single square
is balanced, and the square together with its mirror image (2k orders) is. For k = 2 it is the AB/BA
crossover. Pure functions of k, so the protocol can count arms without importing the allocation.
"""

from __future__ import annotations


def williams_orders(k: int) -> tuple[tuple[int, ...], ...]:
    """The condition orders (indices 0..k-1) of the Williams design for ``k`` conditions.

    First order 0, 1, k−1, 2, k−2, …; order i adds i (mod k) to it; for odd k the k mirrored orders follow.
    """
    if k < 2:
        raise ValueError(f"a crossover needs at least 2 conditions, got k = {k}")
    first = [0]
    low, high = 1, k - 1
    while len(first) < k:
        first.append(low)
        low += 1
        if len(first) < k:
            first.append(high)
            high -= 1
    square = [tuple((c + i) % k for c in first) for i in range(k)]
    if k % 2:
        square += [order[::-1] for order in square]
    return tuple(square)
