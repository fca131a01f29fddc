"""NCIS and MTF-GAUC against brute force / hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from model.metrics import discounted_returns, mtf_gauc, ncis


def test_discounted_returns_by_hand():
    sess, g = discounted_returns(np.array(["b", "a", "a", "b", "a"]), np.array([1, 0, 1, 0, 2]),
                                 np.array([10.0, 1.0, 2.0, 20.0, 4.0]), 0.5)
    assert list(sess) == ["a", "b"]
    assert g == pytest.approx([1 + 0.5 * 2 + 0.25 * 4, 20 + 0.5 * 10])


def _ratio(a, e, h, sigma):
    log_pe = (-0.5 * ((a - e) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))).sum(-1)
    return np.exp(log_pe - (-a.shape[-1] * math.log(2 * h)))


def test_ncis_matches_a_hand_computation_and_clips():
    rng = np.random.default_rng(0)
    n, lst, dim, h, sigma = 6, 2, 3, 0.15, 0.1
    center = rng.uniform(-0.5, 0.5, (n, lst, dim))
    logged = center + rng.uniform(-h, h, (n, lst, dim))
    evals = center + 0.02
    mask = np.ones((n, lst))
    mask[0, 1] = 0  # first unit has one pair
    g = rng.uniform(0, 10, n)
    v, lo, hi = ncis(logged, center, mask, evals, g, half_width=h, sigma=sigma, c=1e9,
                     n_boot=50)
    r = _ratio(logged, evals, h, sigma)  # [n, l]
    unit = np.array([r[0, 0]] + [math.sqrt(r[i, 0] * r[i, 1]) for i in range(1, n)])
    assert v == pytest.approx((unit * g).sum() / unit.sum(), rel=1e-6)
    assert lo <= v <= hi
    v_clip, _, _ = ncis(logged, center, mask, evals, g, half_width=h, sigma=sigma, c=0.5,
                        n_boot=0)
    rho = np.minimum(0.5, unit)
    assert v_clip == pytest.approx((rho * g).sum() / rho.sum(), rel=1e-6)


def _brute_auc(s, y, w):
    num = den = 0.0
    for i, j in itertools.product(range(len(s)), repeat=2):
        if y[i] == 1 and y[j] == 0:
            pw = w[i] * w[j]
            den += pw
            num += pw * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_mtf_gauc_equals_brute_force():
    rng = np.random.default_rng(3)
    users = np.repeat([1, 2, 3, 4], [6, 9, 5, 4])
    scores = np.round(rng.normal(size=len(users)), 1)  # ties on purpose
    labels = (rng.random(len(users)) < 0.5).astype(float)
    labels[users == 4] = 1.0  # one-class user: skipped
    labels[users == 1] = [1, 0, 1, 0, 0, 1]
    weights = 1 + rng.random(len(users))
    expected_num = expected_den = 0.0
    for u in (1, 2, 3):
        m = users == u
        if labels[m].min() == labels[m].max():
            continue
        expected_num += m.sum() * _brute_auc(scores[m], labels[m], weights[m])
        expected_den += m.sum()
    assert mtf_gauc(users, scores, labels, weights) == pytest.approx(expected_num / expected_den)
    assert mtf_gauc(users, -scores, labels, weights) == pytest.approx(
        1 - expected_num / expected_den)
