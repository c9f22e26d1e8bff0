#!/usr/bin/env python3
"""The detection limit of any test that does not know the base rate (docs/statistics.md).

For the split's counts, the uniformly most powerful unbiased test of "new/old ratio <= 1"
with an unknown base rate is the conditional test on the new version's share of the bad
events given each step's total (Lehmann). This prints its power at a fixed horizon, exactly
as the issue's reference cells define them (0.1% base 5xx, 10% for 10 min then 50% for 10
min, fixed requests per minute, Poisson bad events), randomized to size alpha (the best any
such test can do) and not randomized at several alphas (what a gate that never rolls back
on a coin flip can do). Stdlib only; seeded; about 30 s:

    python3 scripts/bench/conditional_limit.py
"""
import math
import random


def poisson(lam, rng):
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def binomial_pmf(n, p):
    return [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


def null_law(events_a, events_b, share_a, share_b):
    """Law of S = X + Y, X ~ Bin(events_a, share_a), Y ~ Bin(events_b, share_b)."""
    a, b = binomial_pmf(events_a, share_a), binomial_pmf(events_b, share_b)
    out = [0.0] * (events_a + events_b + 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def rejection_probability(law, observed, alpha, randomized):
    tail = 0.0
    for c in range(len(law) - 1, -1, -1):
        if tail + law[c] > alpha:
            if observed > c:
                return 1.0
            if observed == c and randomized:
                return (alpha - tail) / law[c]
            return 0.0
        tail += law[c]
    return 1.0


def power(means, shares, alpha, randomized, runs, seed=1):
    """means: expected (new, old) bad events in each step; shares: the new version's share."""
    rng = random.Random(seed)
    total = 0.0
    for _ in range(runs):
        counts = [(poisson(n, rng), poisson(o, rng)) for n, o in means]
        law = null_law(sum(counts[0]), sum(counts[1]), shares[0], shares[1])
        observed = counts[0][0] + counts[1][0]
        total += rejection_probability(law, observed, alpha, randomized)
    return total / runs


def main():
    # Requests per 10-minute step at r rps: 10% step new 60r, old 540r; 50% step 300r each.
    def split(rps, new_rate, old_rate):
        return [
            (60 * rps * new_rate, 540 * rps * old_rate),
            (300 * rps * new_rate, 300 * rps * old_rate),
        ]

    cells = {
        "x5 at 10 rps": split(10, 0.005, 0.001),
        "x20 at 1 rps": split(1, 0.02, 0.001),
    }
    shares = (0.1, 0.5)
    for name, means in cells.items():
        best = power(means, shares, 0.01, True, 20000)
        print(f"{name}: conditional test at the end of the split, randomized, alpha 1%: {best:.1%}")
        for alpha in (0.0049, 0.006, 0.008, 0.01):  # 0.6% = the gate's closing 5xx look
            plain = power(means, shares, alpha, False, 10000)
            print(f"  not randomized, alpha {alpha:.2%}: {plain:.1%}")
    # The grid's other low-count cells where the gate is below 90% of the oracle.
    others = {
        "x1.5 at 100 rps": split(100, 0.0015, 0.001),
        "x2 at 10 rps": split(10, 0.002, 0.001),
        "x5 at 1 rps": split(1, 0.005, 0.001),
        "x20 at 0.1 rps": split(0.1, 0.02, 0.001),
        "x5 at 10 rps, base 0.01%": split(10, 0.0005, 0.0001),
    }
    for name, means in others.items():
        best = power(means, shares, 0.01, True, 5000)
        plain = power(means, shares, 0.006, False, 5000)
        print(f"{name}: randomized, alpha 1%: {best:.1%}; not randomized, alpha 0.6%: {plain:.1%}")
    # p95 +25% at 10 rps: slow requests 5% vs 2%, the 8 minutes of the 10% step visible when
    # its dwell ends (2-minute lag); one step, so the second is empty.
    step = [(8 * 60 * 0.05, 8 * 540 * 0.02), (0.0, 0.0)]
    best = power(step, shares, 0.01, True, 20000, seed=2)
    print(f"p95 +25% at 10 rps, end of the 10% step: randomized, alpha 1%: {best:.1%}")


if __name__ == "__main__":
    main()
