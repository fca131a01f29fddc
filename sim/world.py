"""The simulated world: users, items, the true behaviour model and the biased MTL model.

Hidden state. User taste u ~ N(0, I_k); item taste v = 0.8 N(0, I_k) + c_cat (a centre per
category); item quality q ~ N(0, 0.5^2). Observable: interest = u P_u + N(0, 0.5^2) and
item_vec = v P_i + N(0, 0.5^2) (noisy projections), popularity = sigmoid(q + N(0, 1)).

True behaviour of user u on item j (duration d_j) in context (network):

    s    = u.v / sqrt(k) + q                                           affinity
    fbar = sigmoid(s + watch_bias + watch_activity * activity
                   - duration_elasticity * log(d / 40) - cellular_penalty * cellular)
    phi  = clip(fbar + w z, 0, 1),  z ~ Logistic(0, 1);  watch_time_s = d * phi
    valid = watch > 10 s;  finish = (phi == 1, watched to the end);  skip = watch < 3 s
    like / share / collect ~ Bernoulli(sigmoid(interact_slope * s + interact_bias_b)
                                       * (1 if valid else interact_unwatched))

Because z is logistic the true probabilities are closed-form: P(valid) = sigmoid((fbar -
10/d) / w), P(finish) = sigmoid((fbar - 1) / w), P(skip) = sigmoid((3/d - fbar) / w), and
the expected watched fraction is E[phi] = w (softplus(fbar / w) - softplus((fbar - 1) / w)).

MTL predictions (HEADS order; the `watch` head estimates E[phi], interaction heads their
marginal probability) are noisy, MISCALIBRATED estimates of these probabilities:

    logit(pred_h) = a[cat, h] logit(p_h) + b[cat, h] + g[device, h] + e[hour, h] + mtl_noise * n

with a per-category slope a and offset b, a per-device offset g and a smooth time-of-day
offset e[hour, h] = e_sin[h] sin(2 pi hour / 24) + e_cos[h] cos(2 pi hour / 24), and n a fresh
zero-mean logistic noise of unit variance per request, candidate and head. A pair-level
fusion sees the item's category and the context, so it can undo these errors item by item;
a user-level fusion only sees the context.

Satisfaction (one state per session, Markov in what was consumed):

    sat_0     = sat_init + sat_activity * activity + sat_init_noise * N(0, 1)
    sat_{t+1} = sat_decay * sat_t + sat_valid * #valid_t + sat_interact * #interactions_t
                - sat_skip * #skips_t - sat_fatigue - sat_watch_fatigue * watch_minutes_t
    P(user leaves after request t) = sigmoid(-sat_{t+1})     (and always after max_requests)

Valid views and interactions keep the user in the feed, skips and long watches tire them,
so the long-term optimum (many valid views over a longer session) differs from the myopic
one (the longest watch now).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import schema as S
from sim.config import SimConfig
from sim.features import item_block

K = S.NUM_HEADS
L = S.LIST_LEN
LOGIT_CAP = 13.8
"""Logits are clipped to +-13.8 (probabilities 1e-6 .. 1 - 1e-6)."""
SKIP_SECONDS = 3.0
"""A view shorter than this is a quick skip."""
MIN_DURATION_S, MAX_DURATION_S = 10.0, 180.0
"""Item durations: 10 s + lognormal (median 30 s), capped at 180 s; always > 10 s, so that
a complete view is a valid one."""
DEVICE_SHARE = (0.6, 0.3, 0.1)
"""Share of users whose main device is 0, 1, 2."""
_HOUR_PROFILE = np.array([1.0, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.0, 2.0, 2.0, 2.0,
                          2.5, 2.5, 2.0, 2.0, 2.0, 2.5, 3.0, 3.5, 4.0, 3.5, 2.5, 1.5])
"""Relative share of users by preferred hour (a diurnal profile)."""


_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf -> 0, exactly right
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, _BELOW_ONE)
    return np.clip(np.log(p) - np.log1p(-p), -LOGIT_CAP, LOGIT_CAP)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


RETRIEVAL_FLOOR = 1e-3
"""Retrieval samples items with probability proportional to popularity + this floor."""


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker / Vose alias table (prob [n], alias [n]) for O(1) weighted sampling:
    i = floor(u n); keep i if frac(u n) < prob[i], else alias[i]."""
    w = np.asarray(weights, np.float64)
    n = len(w)
    scaled = w * (n / w.sum())
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias  # leftovers (rounding) keep prob 1


@dataclass
class Truth:
    """True behaviour of B x N (user, item) pairs: probabilities as logits, each [B, N]."""

    fbar: np.ndarray
    """Location of the watched fraction (before the logistic noise)."""
    frac: np.ndarray
    """E[watched fraction] (the target of the `watch` head)."""
    valid_logit: np.ndarray
    finish_logit: np.ndarray
    skip_logit: np.ndarray
    interact: np.ndarray
    """[B, N, 3] like / share / collect probability given a valid view."""
    interact_marginal: np.ndarray
    """[B, N, 3] like / share / collect marginal probability (the MTL targets)."""

    @property
    def valid(self) -> np.ndarray:
        return sigmoid(self.valid_logit)

    @property
    def finish(self) -> np.ndarray:
        return sigmoid(self.finish_logit)

    @property
    def skip(self) -> np.ndarray:
        return sigmoid(self.skip_logit)

    def head_logits(self) -> np.ndarray:
        """[B, N, K] logits of the true head probabilities, HEADS order, clipped to +-LOGIT_CAP."""
        out = np.empty((*self.fbar.shape, K))
        out[..., 0] = self.valid_logit
        out[..., 1] = logit(self.frac)
        out[..., 2] = self.finish_logit
        out[..., 3:6] = logit(self.interact_marginal)
        out[..., 6] = self.skip_logit
        return np.clip(out, -LOGIT_CAP, LOGIT_CAP, out=out)

    def heads(self) -> np.ndarray:
        """[B, N, K] true probabilities in HEADS order."""
        return sigmoid(self.head_logits())

    def take(self, slots: np.ndarray) -> Truth:
        """Select candidate slots [B, M] -> a Truth of B x M pairs."""
        def t(x: np.ndarray) -> np.ndarray:
            idx = slots[..., None] if x.ndim == 3 else slots
            return np.take_along_axis(x, idx, 1)
        return Truth(t(self.fbar), t(self.frac), t(self.valid_logit), t(self.finish_logit),
                     t(self.skip_logit), t(self.interact), t(self.interact_marginal))


@dataclass
class Feedback:
    """Sampled behaviour on B x L exposed pairs, each [B, L]."""

    watch_time_s: np.ndarray
    valid: np.ndarray
    finish: np.ndarray
    like: np.ndarray
    share: np.ndarray
    collect: np.ndarray
    skip: np.ndarray


@dataclass
class World:
    """Users, items and the models; `World.build(cfg)` is deterministic in cfg.seed."""

    cfg: SimConfig
    # users [U]
    user_id: np.ndarray
    age_bucket: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    activity: np.ndarray
    interest: np.ndarray  # [U, INTEREST_DIM] float32
    user_latent: np.ndarray  # [U, k] hidden
    pref_hour: np.ndarray
    main_device: np.ndarray
    # items [I]
    item_id: np.ndarray
    category: np.ndarray
    author_id: np.ndarray
    duration_s: np.ndarray
    item_vec: np.ndarray  # [I, ITEM_VEC_DIM] float32
    popularity: np.ndarray
    quality: np.ndarray  # hidden
    item_latent: np.ndarray  # [I, k] hidden
    item_features: np.ndarray  # [I, D_ITEM] float32, the item block of the state
    # MTL miscalibration
    cal_slope: np.ndarray  # [C, K]
    cal_offset: np.ndarray  # [C, K]
    device_offset: np.ndarray  # [NUM_DEVICES, K]
    hour_offset: np.ndarray  # [24, K]
    # retrieval: Walker alias table of the popularity weights (popularity + 1e-3)
    alias_prob: np.ndarray  # [I]
    alias_index: np.ndarray  # [I]

    @classmethod
    def build(cls, cfg: SimConfig, *, population: int | None = None,
              n_users: int | None = None) -> World:
        """The catalogue and the MTL model always come from cfg.seed. The users are the
        training population (from cfg.seed) unless `population` is given: then a fresh
        population, facing the same catalogue and MTL model (held-out A/B users)."""
        rng = np.random.default_rng([cfg.seed, 1])
        k, n_items, C = cfg.latent_dim, cfg.n_items, S.NUM_CATEGORIES
        # items
        cat_centre = rng.normal(0.0, 0.8, (C, k))
        cat_share = rng.dirichlet(np.full(C, 5.0))
        category = rng.choice(C, n_items, p=cat_share)
        item_latent = 0.8 * rng.normal(0.0, 1.0, (n_items, k)) + cat_centre[category]
        proj_i = rng.normal(0.0, 1.0, (k, S.ITEM_VEC_DIM)) / np.sqrt(k)
        item_vec = item_latent @ proj_i + rng.normal(0.0, 0.5, (n_items, S.ITEM_VEC_DIM))
        duration = np.minimum(MIN_DURATION_S + np.exp(rng.normal(np.log(30.0), 0.75, n_items)),
                              MAX_DURATION_S)
        quality = rng.normal(0.0, 0.5, n_items)
        popularity = sigmoid(quality + rng.normal(0.0, 1.0, n_items))
        author_id = rng.integers(0, max(1, n_items // 5), n_items)
        # MTL miscalibration
        m = cfg.miscalibration
        cal_slope = 1.0 + m * rng.uniform(-0.4, 0.4, (C, K))
        cal_offset = m * rng.normal(0.0, 0.5, (C, K))
        device_offset = m * rng.normal(0.0, 0.3, (S.NUM_DEVICES, K))
        e_sin, e_cos = m * rng.normal(0.0, 0.3, (2, K))
        ang = 2.0 * np.pi * np.arange(24) / 24.0
        hour_offset = np.sin(ang)[:, None] * e_sin + np.cos(ang)[:, None] * e_cos
        proj_u = rng.normal(0.0, 1.0, (k, S.INTEREST_DIM)) / np.sqrt(k)
        # users
        urng = np.random.default_rng([cfg.seed, 2] if population is None
                                     else [cfg.seed, 3, population])
        n_users = cfg.n_users if n_users is None else n_users
        user_latent = urng.normal(0.0, 1.0, (n_users, k))
        interest = user_latent @ proj_u + urng.normal(0.0, 0.5, (n_users, S.INTEREST_DIM))
        item_vec32 = item_vec.astype(np.float32)
        return cls(
            cfg=cfg, user_id=np.arange(n_users, dtype=np.int64),
            age_bucket=urng.integers(0, S.NUM_AGE_BUCKETS, n_users).astype(np.int32),
            gender=urng.integers(0, 2, n_users).astype(np.int32),
            region=urng.integers(0, S.NUM_REGIONS, n_users).astype(np.int32),
            activity=urng.beta(2.0, 2.0, n_users),
            interest=interest.astype(np.float32), user_latent=user_latent,
            pref_hour=urng.choice(24, n_users, p=_HOUR_PROFILE / _HOUR_PROFILE.sum()),
            main_device=urng.choice(S.NUM_DEVICES, n_users, p=DEVICE_SHARE).astype(np.int32),
            item_id=np.arange(n_items, dtype=np.int64), category=category.astype(np.int32),
            author_id=author_id.astype(np.int64), duration_s=duration, item_vec=item_vec32,
            popularity=popularity, quality=quality, item_latent=item_latent,
            item_features=item_block(item_vec32, duration, popularity, category),
            cal_slope=cal_slope, cal_offset=cal_offset, device_offset=device_offset,
            hour_offset=hour_offset, **dict(zip(("alias_prob", "alias_index"),
                                                 alias_table(popularity + RETRIEVAL_FLOOR))))

    # --- the true behaviour model ----------------------------------------------------
    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users [B], items [B, N] -> s [B, N] = u.v / sqrt(k) + q."""
        u = self.user_latent[users]  # [B, k]
        v = self.item_latent[items]  # [B, N, k]
        s = np.einsum("bk,bnk->bn", u, v) / np.sqrt(self.cfg.latent_dim)
        return s + self.quality[items]

    def true_probs(self, users: np.ndarray, items: np.ndarray, network: np.ndarray) -> Truth:
        """users [B], items [B, N], network [B] (1 = cellular) -> the true probabilities."""
        cfg = self.cfg
        s = self.affinity(users, items)
        dur = self.duration_s[items]
        z = (s + cfg.watch_bias + cfg.watch_activity * self.activity[users][:, None]
             - cfg.duration_elasticity * np.log(dur / 40.0)
             - cfg.cellular_penalty * np.asarray(network, np.float64)[:, None])
        fbar = sigmoid(z)
        w = cfg.watch_noise
        frac = w * (softplus(fbar / w) - softplus((fbar - 1.0) / w))
        valid_logit = (fbar - S.VALID_WATCH_SECONDS / dur) / w
        interact = sigmoid(cfg.interact_slope * s[..., None] + np.asarray(cfg.interact_bias))
        marginal = interact * (cfg.interact_unwatched
                               + (1.0 - cfg.interact_unwatched) * sigmoid(valid_logit)[..., None])
        return Truth(fbar=fbar, frac=frac, valid_logit=valid_logit,
                     finish_logit=(fbar - 1.0) / w, skip_logit=(SKIP_SECONDS / dur - fbar) / w,
                     interact=interact, interact_marginal=marginal)

    def sample_feedback(self, truth: Truth, items: np.ndarray, u_watch: np.ndarray,
                        u_interact: np.ndarray) -> Feedback:
        """Behaviour on exposed pairs from uniforms: truth of B x L pairs, items [B, L],
        u_watch [B, L], u_interact [B, L, 3] (all uniforms in (0, 1))."""
        cfg = self.cfg
        dur = self.duration_s[items]
        raw = truth.fbar + cfg.watch_noise * logit(u_watch)  # logistic noise
        frac = np.clip(raw, 0.0, 1.0)
        watch = dur * frac
        valid = watch > S.VALID_WATCH_SECONDS
        damp = np.where(valid, 1.0, cfg.interact_unwatched)[..., None]
        inter = u_interact < truth.interact * damp
        return Feedback(watch_time_s=watch, valid=valid, finish=raw >= 1.0,
                        like=inter[..., 0], share=inter[..., 1], collect=inter[..., 2],
                        skip=watch < SKIP_SECONDS)

    # --- satisfaction ----------------------------------------------------------------
    def initial_satisfaction(self, users: np.ndarray, normal: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        return cfg.sat_init + cfg.sat_activity * self.activity[users] + cfg.sat_init_noise * normal

    def next_satisfaction(self, sat: np.ndarray, fb: Feedback) -> np.ndarray:
        """sat [B] after one request's feedback [B, L]."""
        cfg = self.cfg
        interactions = (fb.like.sum(1) + fb.share.sum(1) + fb.collect.sum(1))
        return (cfg.sat_decay * sat + cfg.sat_valid * fb.valid.sum(1)
                + cfg.sat_interact * interactions - cfg.sat_skip * fb.skip.sum(1)
                - cfg.sat_fatigue - cfg.sat_watch_fatigue * fb.watch_time_s.sum(1) / 60.0)

    # --- the MTL model -----------------------------------------------------------------
    def mtl_predictions(self, truth: Truth, items: np.ndarray, device: np.ndarray,
                        hour: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """Noisy, miscalibrated head predictions [B, N, K] in (0, 1), HEADS order.

        items [B, N]; device, hour [B]; noise: unit-variance noise [B, N, K] (None: none).
        """
        cat = self.category[items]
        z = (self.cal_slope[cat] * truth.head_logits() + self.cal_offset[cat]
             + self.device_offset[device][:, None, :] + self.hour_offset[hour][:, None, :])
        if noise is not None:
            z += self.cfg.mtl_noise * noise
        return np.clip(sigmoid(z), 1e-4, 1.0 - 1e-4).astype(np.float32)
