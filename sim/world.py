"""The simulated world: users, items, true behaviour model and the biased MTL model.

Hidden taste vectors u (users) and v (items, shifted by a category centre), item quality q:

    affinity   s = u.v / sqrt(k) + q
    watched fraction  f = sigmoid(s - 2.2 + 0.3 activity - 0.6 log(duration / 40)),
                      observed frac = clip(f + z, 0, 1), z ~ Logistic(0, watch_noise)
    watch = duration * frac;  valid = watch > 10 s;  finish = frac >= 0.95;  skip = watch < 3 s
    like / share / collect ~ Bernoulli(sigmoid(1.5 s + c_b)) (x0.1 unless valid)

Because z is logistic, the true probabilities are closed-form: P(valid) = sigmoid((f - 10/dur)
/ w), P(finish) = sigmoid((f - 0.95) / w), P(skip) = sigmoid((3/dur - f) / w).
The MTL model predicts each head as sigmoid(a[c,h] logit(p_true) + b[c,h] + g[device,h]
+ e[night,h] + noise): slope and offset depend on the item's category c, offsets on the
device and the time of day -- so pair-level fusion, which sees category and context, can
undo errors that a user-level fusion cannot.

Satisfaction (per session): sat <- decay sat + sat_valid #valid + sat_interact #interactions
- sat_skip #skips - sat_fatigue; after each request the user stays with prob sigmoid(sat).
Valid views keep users in the session, so the long-term optimum (many valid views over a
long session) differs from the myopic one (the longest single watch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mtf import schema as S
from sim.config import SimConfig
from sim.features import item_block

K = S.NUM_HEADS
_INTERACT_BIAS = np.array([-5.0, -7.0, -6.0])  # like, share, collect


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


@dataclass
class World:
    cfg: SimConfig
    # users
    user_id: np.ndarray
    age_bucket: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    activity: np.ndarray
    interest: np.ndarray  # [U, 8] float32
    user_latent: np.ndarray  # [U, k]
    pref_hour: np.ndarray
    main_device: np.ndarray
    # items
    item_id: np.ndarray
    category: np.ndarray
    author_id: np.ndarray
    duration_s: np.ndarray
    item_vec: np.ndarray  # [I, 8] float32
    popularity: np.ndarray
    quality: np.ndarray
    item_latent: np.ndarray  # [I, k]
    item_features: np.ndarray  # [I, D_ITEM] float32
    # MTL miscalibration
    cal_slope: np.ndarray  # [C, K]
    cal_offset: np.ndarray  # [C, K]
    device_offset: np.ndarray  # [devices, K]
    night_offset: np.ndarray  # [K]

    @classmethod
    def build(cls, cfg: SimConfig, *, user_seed: int | None = None,
              n_users: int | None = None) -> World:
        """Items and the MTL model come from cfg.seed; users from `user_seed` (default
        cfg.seed), so a fresh population can face the same catalogue and model."""
        rng = np.random.default_rng([cfg.seed, 1])
        k = cfg.latent_dim
        n_items = cfg.n_items
        cat_centre = rng.normal(0, 0.8, (S.NUM_CATEGORIES, k))
        category = rng.integers(0, S.NUM_CATEGORIES, n_items)
        item_latent = rng.normal(0, 1, (n_items, k)) * 0.8 + cat_centre[category]
        proj_i = rng.normal(0, 1, (k, S.ITEM_VEC_DIM)) / np.sqrt(k)
        item_vec = (item_latent @ proj_i + rng.normal(0, 0.5, (n_items, S.ITEM_VEC_DIM)))
        duration = np.clip(np.exp(rng.normal(np.log(40), 0.7, n_items)), 10, 180)
        quality = rng.normal(0, 0.5, n_items)
        popularity = sigmoid(quality + rng.normal(0, 1, n_items))
        m = cfg.miscalibration
        cal_slope = 1.0 + m * rng.uniform(-0.45, 0.45, (S.NUM_CATEGORIES, K))
        cal_offset = m * rng.normal(0, 0.6, (S.NUM_CATEGORIES, K))
        device_offset = m * rng.normal(0, 0.3, (S.NUM_DEVICES, K))
        night_offset = m * rng.normal(0, 0.3, K)
        proj_u = rng.normal(0, 1, (k, S.INTEREST_DIM)) / np.sqrt(k)

        urng = np.random.default_rng([cfg.seed if user_seed is None else user_seed, 2])
        n_users = cfg.n_users if n_users is None else n_users
        user_latent = urng.normal(0, 1, (n_users, k))
        interest = user_latent @ proj_u + urng.normal(0, 0.5, (n_users, S.INTEREST_DIM))
        item_vec32 = item_vec.astype(np.float32)
        return cls(
            cfg=cfg, user_id=np.arange(n_users, dtype=np.int64),
            age_bucket=urng.integers(0, S.NUM_AGE_BUCKETS, n_users).astype(np.int32),
            gender=urng.integers(0, 2, n_users).astype(np.int32),
            region=urng.integers(0, S.NUM_REGIONS, n_users).astype(np.int32),
            activity=urng.beta(2, 2, n_users), interest=interest.astype(np.float32),
            user_latent=user_latent, pref_hour=urng.integers(7, 18, n_users),
            main_device=urng.integers(0, S.NUM_DEVICES, n_users),
            item_id=np.arange(n_items, dtype=np.int64), category=category.astype(np.int32),
            author_id=rng.integers(0, max(1, n_items // 5), n_items).astype(np.int64),
            duration_s=duration, item_vec=item_vec32, popularity=popularity, quality=quality,
            item_latent=item_latent,
            item_features=item_block(item_vec32, duration, popularity, category),
            cal_slope=cal_slope, cal_offset=cal_offset, device_offset=device_offset,
            night_offset=night_offset)

    # --- the true behaviour model -------------------------------------------------
    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users [B], items [B, N] -> [B, N]."""
        u = self.user_latent[users][:, None, :]
        v = self.item_latent[items]
        return (u * v).sum(-1) / np.sqrt(self.cfg.latent_dim) + self.quality[items]

    def true_probs(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        s = self.affinity(users, items)
        dur = self.duration_s[items]
        f = sigmoid(s - 2.2 + 0.3 * self.activity[users][:, None] - 0.6 * np.log(dur / 40.0))
        w = self.cfg.watch_noise
        inter = sigmoid(1.5 * s[..., None] + _INTERACT_BIAS)
        return {"frac": f, "valid": sigmoid((f - 10.0 / dur) / w),
                "finish": sigmoid((f - 0.95) / w), "skip": sigmoid((3.0 / dur - f) / w),
                "like": inter[..., 0], "share": inter[..., 1], "collect": inter[..., 2]}

    def mtl_predictions(self, truth: dict[str, np.ndarray], items: np.ndarray,
                        device: np.ndarray, hour: np.ndarray, rng: np.random.Generator
                        ) -> np.ndarray:
        """Noisy, miscalibrated head predictions [B, N, K] in (0, 1), HEADS order."""
        p_valid_view = truth["valid"]
        true = np.stack([truth["valid"], truth["frac"], truth["finish"],
                         truth["like"] * (0.1 + 0.9 * p_valid_view),
                         truth["share"] * (0.1 + 0.9 * p_valid_view),
                         truth["collect"] * (0.1 + 0.9 * p_valid_view),
                         truth["skip"]], -1)
        cat = self.category[items]
        night = ((hour < 7) | (hour >= 21)).astype(np.float64)
        z = (self.cal_slope[cat] * logit(true) + self.cal_offset[cat]
             + self.device_offset[device][:, None, :]
             + night[:, None, None] * self.night_offset
             + rng.normal(0, self.cfg.mtl_noise, true.shape))
        return np.clip(sigmoid(z), 1e-4, 1 - 1e-4).astype(np.float32)

    def with_users(self, user_seed: int, n_users: int | None = None) -> World:
        return World.build(dataclasses.replace(self.cfg), user_seed=user_seed, n_users=n_users)
