"""discounted_returns, NCIS and MTF-GAUC against hand-computed values / brute force."""

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
    # a session first seen mid-way is discounted from its first logged request
    sess, g = discounted_returns(np.array([7, 7]), np.array([3, 4]), np.array([1.0, 2.0]), 0.5)
    assert g == pytest.approx([1 + 0.5 * 2])
    with pytest.raises(ValueError, match="duplicated"):
        discounted_returns(np.array([1, 1]), np.array([0, 0]), np.array([1.0, 1.0]), 0.9)


def _log_ratio_interior(a, e, h, sigma):
    """log N(a; e, sigma) - log(1 / 2h), summed over dims, by the textbook formula."""
    return sum(-0.5 * ((ak - ek) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
               + math.log(2 * h) for ak, ek in zip(a, e))


def _tiny_case():
    """3 sessions, lists of 2 pairs (unit 0 has one present pair), A = 2, boxes inside."""
    h = 0.15
    center = np.array([[[0.0, 0.2], [0.1, -0.3]],
                       [[0.5, 0.5], [-0.5, 0.0]],
                       [[0.3, 0.1], [0.0, 0.0]]])
    noise = np.array([[[0.1, -0.05], [0.9, 0.9]],  # second pair absent: garbage ignored
                      [[-0.14, 0.0], [0.02, 0.07]],
                      [[0.0, 0.0], [-0.1, 0.12]]])
    logged = center + np.where(np.abs(noise) < 0.5, noise, 0.0)
    logged[0, 1] = 5.0  # absent pair, far outside its box: must not matter
    mask = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    returns = np.array([3.0, 10.0, 6.0])
    return h, center, logged, mask, returns


def test_ncis_eval_at_box_centre_equals_the_hand_weighted_mean():
    h, center, logged, mask, g = _tiny_case()
    for sigma in (0.1, 1000.0):
        v, lo, hi = ncis(logged, center, mask, center, g, half_width=h, sigma=sigma, c=1e9,
                         n_boot=100)
        w = []
        for n in range(3):
            lr = [_log_ratio_interior(logged[n, k], center[n, k], h, sigma)
                  for k in range(2) if mask[n, k]]
            w.append(math.exp(sum(lr) / len(lr)))  # geometric mean of the pair ratios
        expected = sum(wn * gn for wn, gn in zip(w, g)) / sum(w)
        assert v == pytest.approx(expected, rel=1e-9)
        assert lo <= v <= hi
    # sigma large: every unit has (almost) the same ratio -> the plain mean of the returns
    assert v == pytest.approx(g.mean(), rel=1e-6)


def test_ncis_clips_the_ratio_at_c():
    h, center, logged, mask, g = _tiny_case()
    sigma = 0.05
    evals = center.copy()
    evals[2] = logged[2]  # unit 2: the kernel peaks on its logged actions -> a large ratio
    ratios = []
    for n in range(3):
        lr = [_log_ratio_interior(logged[n, k], evals[n, k], h, sigma)
              for k in range(2) if mask[n, k]]
        ratios.append(math.exp(sum(lr) / len(lr)))
    assert ratios[2] > 2.0 > 1.0 > max(ratios[:2])  # so c = 1 clips unit 2 only
    v_free, _, _ = ncis(logged, center, mask, evals, g, half_width=h, sigma=sigma, c=1e9,
                        n_boot=0)
    v_clip, lo, hi = ncis(logged, center, mask, evals, g, half_width=h, sigma=sigma, c=1.0,
                          n_boot=0)
    rho = np.minimum(1.0, ratios)
    assert v_clip == pytest.approx(float((rho * g).sum() / rho.sum()), rel=1e-9)
    assert v_free == pytest.approx(float((np.array(ratios) * g).sum() / sum(ratios)), rel=1e-9)
    assert abs(v_free - v_clip) > 0.1
    assert math.isnan(lo) and math.isnan(hi)  # no bootstrap asked


def test_ncis_ci_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(0)
    n, h = 400, 0.15
    center = rng.uniform(-0.6, 0.6, (n, 5, 10))
    logged = center + rng.uniform(-h, h, center.shape)
    evals = center + rng.normal(0, 0.05, center.shape)
    g = rng.gamma(2.0, 5.0, n)
    args = (logged, center, np.ones((n, 5)), evals, g)
    v, lo, hi = ncis(*args, half_width=h, sigma=0.1, n_boot=200, seed=3)
    assert lo < v < hi and hi - lo < 0.5 * v
    assert ncis(*args, half_width=h, sigma=0.1, n_boot=200, seed=3) == (v, lo, hi)
    assert ncis(*args, half_width=h, sigma=0.1, n_boot=200, seed=4) != (v, lo, hi)


def test_ncis_is_defined_when_every_ratio_underflows():
    h, center, logged, mask, g = _tiny_case()
    far = center + 0.9  # log ratios around -1e4: exp() underflows, the log domain does not
    v, _, _ = ncis(logged, center, mask, far, g, half_width=h, sigma=0.01, c=10.0, n_boot=0)
    lr = []
    for n in range(3):
        pairs = [_log_ratio_interior(logged[n, k], far[n, k], h, 0.01)
                 for k in range(2) if mask[n, k]]
        lr.append(sum(pairs) / len(pairs))
    assert max(lr) < -1000
    w = np.exp(np.array(lr) - max(lr))
    assert v == pytest.approx(float((w * g).sum() / w.sum()), rel=1e-9)


def test_ncis_clipped_edge_uses_point_masses():
    """A box crossing +1: the logged coordinate clipped to 1 has behaviour mass
    (c + h - 1) / 2h and evaluated mass P(N(e, sigma) >= 1)."""
    h, sigma = 0.15, 0.1
    center = np.array([[[0.95, 0.0]]])  # dim 0's box [0.8, 1.1] crosses +1
    logged = np.array([[[1.0, 0.05]]])  # clipped at the edge; dim 1 inside
    evals = np.array([[[0.9, 0.0]]])
    v, _, _ = ncis(logged, center, np.ones((1, 1)), evals, np.array([2.0]), half_width=h,
                   sigma=sigma, n_boot=0)
    assert v == pytest.approx(2.0)  # one unit: V = G whatever the ratio
    # the ratio itself, through two units with different returns
    logged2 = np.concatenate([logged, np.array([[[0.9, 0.05]]])])  # unit 1 interior
    center2 = np.concatenate([center, center])
    evals2 = np.concatenate([evals, evals])
    v2, _, _ = ncis(logged2, center2, np.ones((2, 1)), evals2, np.array([1.0, 0.0]),
                    half_width=h, sigma=sigma, c=1e9, n_boot=0)
    p_e = 0.5 * math.erfc((1.0 - 0.9) / (sigma * math.sqrt(2)))  # P(N(0.9, 0.1) >= 1)
    p_b = (0.95 + h - 1.0) / (2 * h)
    dim1 = _log_ratio_interior([0.05], [0.0], h, sigma)
    r0 = math.exp(math.log(p_e / p_b) + dim1)
    r1 = math.exp(_log_ratio_interior([0.9, 0.05], [0.9, 0.0], h, sigma))
    assert v2 == pytest.approx(r0 / (r0 + r1), rel=1e-9)


def test_ncis_rejects_actions_outside_their_box():
    h, center, logged, mask, g = _tiny_case()
    bad = logged.copy()
    bad[1, 0, 0] = center[1, 0, 0] + 0.2
    with pytest.raises(ValueError, match="outside their box"):
        ncis(bad, center, mask, center, g, half_width=h, sigma=0.1)


def _brute_auc(s, y, w):
    num = den = 0.0
    for i, j in itertools.product(range(len(s)), repeat=2):
        if y[i] == 1 and y[j] == 0:
            pw = w[i] * w[j]
            den += pw
            num += pw * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def _brute_gauc(users, scores, labels, weights):
    num = den = 0.0
    for u in np.unique(users):
        m = users == u
        if labels[m].min() == labels[m].max():
            continue  # one-class user
        num += m.sum() * _brute_auc(scores[m], labels[m], weights[m])
        den += m.sum()
    return num / den


def test_mtf_gauc_equals_brute_force_small():
    rng = np.random.default_rng(3)
    users = np.repeat([1, 2, 3, 4], [6, 9, 5, 4])
    scores = np.round(rng.normal(size=len(users)), 1)  # ties on purpose
    labels = (rng.random(len(users)) < 0.5).astype(float)
    labels[users == 4] = 1.0  # one-class user: skipped
    labels[users == 1] = [1, 0, 1, 0, 0, 1]
    labels[users == 3] = [0, 1, 0, 0, 1]
    weights = 1 + rng.random(len(users))
    expected = _brute_gauc(users, scores, labels, weights)
    perm = rng.permutation(len(users))  # row order must not matter
    assert mtf_gauc(users[perm], scores[perm], labels[perm], weights[perm]) == pytest.approx(
        expected, rel=1e-12)
    assert mtf_gauc(users, -scores, labels, weights) == pytest.approx(1 - expected, rel=1e-12)
    # the one-class user is really skipped: changing its scores changes nothing
    s2 = scores.copy()
    s2[users == 4] = 100.0
    assert mtf_gauc(users, s2, labels, weights) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mtf_gauc_equals_brute_force_random(seed):
    rng = np.random.default_rng(seed)
    n = 300
    users = rng.choice(np.array([f"u{i}" for i in range(25)]), n)
    scores = np.round(rng.normal(size=n), 1)  # many ties
    labels = (rng.random(n) < 0.4).astype(float)
    weights = 1.0 + rng.exponential(size=n)
    assert mtf_gauc(users, scores, labels, weights) == pytest.approx(
        _brute_gauc(users, scores, labels, weights), rel=1e-10)


def test_mtf_gauc_without_two_class_users_is_nan():
    assert math.isnan(mtf_gauc(np.array([1, 1, 2]), np.array([0.1, 0.2, 0.3]),
                               np.array([1.0, 1.0, 0.0]), np.ones(3)))
