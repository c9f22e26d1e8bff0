#!/usr/bin/env python3
"""The detection limit of any test that does not know the base rate (docs/statistics.md).

For the split's counts, the uniformly most powerful unbiased test of "new/old ratio <= 1"
with an unknown base rate is the conditional test on the new version's share of the bad
events given each step's total (Lehmann). This prints its power at a fixed horizon, exactly
as the issue's reference cells define them (0.1% base 5xx, 10% for 10 min then 50% for 10
min, fixed requests per minute, Poisson bad events), randomized to size alpha (the best any
such test can do) and not randomized at several alphas (what a gate that never rolls back
on a coin flip can do), and what a baseline window before the rollout adds to it. Stdlib
only; seeded; about a minute:

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


def binomial_upper_tail(n, p, k):
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def power_with_history(means, shares, history_minutes, runs, seed=3):
    """Union of the conditional test (alpha 0.45%) and the history look (alpha 0.075%, margin
    1.5, guard: the conditional test at 5%). `means` are `main`'s split cells; the old version
    served 540 requests a minute-of-traffic in the 10% step's 10 minutes, so over the window
    it serves 60 x history_minutes, with history_minutes / 9 times the 10% step's old events."""
    rng = random.Random(seed)
    (new_a, old_a), (new_b, old_b) = means
    history_mean = old_a * history_minutes / 9.0
    p0 = 1.5 * 360.0 / (1.5 * 360.0 + 60.0 * history_minutes)  # requests cancel the rps
    total = 0.0
    for _ in range(runs):
        a, c = poisson(new_a, rng), poisson(old_a, rng)
        b, d = poisson(new_b, rng), poisson(old_b, rng)
        h = poisson(history_mean, rng)
        law = null_law(a + c, b + d, shares[0], shares[1])
        new_bad = a + b
        p_concurrent = sum(law[new_bad:])
        p_history = binomial_upper_tail(new_bad + h, p0, new_bad) if new_bad else 1.0
        total += (p_concurrent <= 0.0045) or (p_history <= 0.00075 and p_concurrent <= 0.05)
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
        all_alpha = power(means, shares, 0.01, False, 5000)
        plain = power(means, shares, 0.006, False, 5000)
        print(f"{name}: randomized, alpha 1%: {best:.1%}; not randomized, alpha 1%: "
              f"{all_alpha:.1%}; alpha 0.6%: {plain:.1%}")
    # What a baseline window before the rollout adds (docs/statistics.md, "The baseline-history
    # look"): the old version's 5xx over 180 minutes at the same traffic; the new version's
    # split 5xx tested against 1.5 x that rate at the closing look's half of the history
    # looks' alpha (0.6% x 0.25 / 2), rejecting only with the 5% concurrent guard; in union
    # with the conditional test at the scheduled looks' alpha (0.45%); not randomized.
    for name, means in cells.items():
        with_history = power_with_history(means, shares, 180, runs=10000)
        print(f"{name}: conditional test at 0.45% or history look (180 min, margin 1.5): "
              f"{with_history:.1%}")
    # p95 +25% at 10 rps: slow requests 5% vs 2%, the 8 minutes of the 10% step visible when
    # its dwell ends (2-minute lag); one step, so the second is empty.
    step = [(8 * 60 * 0.05, 8 * 540 * 0.02), (0.0, 0.0)]
    best = power(step, shares, 0.01, True, 20000, seed=2)
    print(f"p95 +25% at 10 rps, end of the 10% step: randomized, alpha 1%: {best:.1%}")


if __name__ == "__main__":
    main()
