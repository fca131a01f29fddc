"""Simulator: determinism, log invariants, feature layout, serving policies, ground truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from core import schema as S
from core.checksum import file_sha256
from core.fusion import default_action_norm, log_fused_score
from core.policy import CallablePolicy, FixedWeightsPolicy, TorchScriptPolicy
from sim import SimConfig, World, evaluate_policy, simulate_day
from sim import features as F

CFG = SimConfig(seed=11, n_users=120, n_items=300, n_candidates=20)
DS = "2026-03-04"
TABLES = ("raw_users", "raw_items", "raw_requests", "raw_exposures", "raw_feedback")
COLUMNS = {
    "raw_users": ["ds", "user_id", "age_bucket", "gender", "region", "activity", "interest"],
    "raw_items": ["ds", "item_id", "category", "author_id", "duration_s", "item_vec",
                  "popularity"],
    "raw_requests": ["ds", "request_id", "session_id", "user_id", "request_index", "ts_ms",
                     "hour", "device", "network", "arm", "policy_version", "action", "mu_bp",
                     "noise", "explore_half_width", "n_candidates", "cand_pred_mean",
                     "cand_pred_std"],
    "raw_exposures": ["ds", "request_id", "item_id", "position", "preds", "cand_rank",
                      "cand_z", "action", "mu_bp"],
    "raw_feedback": ["ds", "request_id", "item_id", "watch_time_s", "valid", "finish", "like",
                     "share", "collect", "skip", "exit_after_request"],
}
ARRAYS = {"interest": 8, "item_vec": 8, "action": 10, "mu_bp": 10, "noise": 10,
          "cand_pred_mean": 7, "cand_pred_std": 7, "preds": 7, "cand_rank": 7, "cand_z": 7}
INT32 = {"age_bucket", "gender", "region", "category", "request_index", "hour", "device",
         "network", "n_candidates", "position", "valid", "finish", "like", "share", "collect",
         "skip", "exit_after_request"}


def stack(col: pd.Series) -> np.ndarray:
    return np.stack(col.to_numpy())


@pytest.fixture(scope="module")
def world():
    return World.build(CFG)


@pytest.fixture(scope="module")
def logs(world):
    return simulate_day(world, FixedWeightsPolicy(), DS, return_states=True)


# --- config ------------------------------------------------------------------------------
def test_config_round_trip_and_validation():
    cfg = SimConfig.from_dict(CFG.to_dict())
    assert cfg == CFG
    with pytest.raises(KeyError, match="no_such"):
        SimConfig.from_dict({"no_such": 1})
    with pytest.raises(ValueError, match="max_requests"):
        SimConfig(max_requests=S.MAX_REQUESTS_PER_SESSION + 1)


# --- determinism -------------------------------------------------------------------------
def test_same_seed_same_logs_and_another_day_differs(world, logs):
    again = simulate_day(World.build(CFG), FixedWeightsPolicy(), DS, return_states=True)
    for t in TABLES + ("pair_states", "user_states"):
        pd.testing.assert_frame_equal(getattr(logs, t), getattr(again, t))
    other = simulate_day(world, FixedWeightsPolicy(), "2026-03-05")
    assert not np.array_equal(other.raw_requests["ts_ms"] - 86_400_000,
                              logs.raw_requests["ts_ms"][:len(other.raw_requests)])
    assert not other.raw_feedback["watch_time_s"].equals(logs.raw_feedback["watch_time_s"])
    reseeded = simulate_day(World.build(dataclasses.replace(CFG, seed=12)), FixedWeightsPolicy(),
                            DS)
    assert not reseeded.raw_items["duration_s"].equals(logs.raw_items["duration_s"])


def test_output_does_not_depend_on_session_batching(logs):
    small = World.build(dataclasses.replace(CFG, session_chunk=7))
    chunked = simulate_day(small, FixedWeightsPolicy(), DS, return_states=True)
    for t in TABLES + ("pair_states", "user_states"):
        pd.testing.assert_frame_equal(getattr(logs, t), getattr(chunked, t))


# --- the logs ----------------------------------------------------------------------------
def test_tables_have_the_contracted_columns_and_dtypes(logs):
    for table, cols in COLUMNS.items():
        df = getattr(logs, table)
        assert list(df.columns) == cols, table
        assert (df["ds"] == DS).all()
        for c in cols:
            if c in ARRAYS:
                first = df[c].iloc[0]
                assert first.dtype == np.float32 and first.shape == (ARRAYS[c],), (table, c)
            elif c in INT32:
                assert df[c].dtype == np.int32, (table, c)
            elif c in ("user_id", "item_id", "author_id", "ts_ms"):
                assert df[c].dtype == np.int64, (table, c)
            elif c in ("activity", "duration_s", "popularity", "watch_time_s",
                       "explore_half_width"):
                assert df[c].dtype == np.float64, (table, c)
    assert len(logs.raw_users) == CFG.n_users and len(logs.raw_items) == CFG.n_items
    assert logs.pair_states["pair_state"].iloc[0].shape == (S.PAIR_STATE_DIM,)
    assert logs.user_states["user_state"].iloc[0].shape == (S.USER_STATE_DIM,)


def test_log_invariants(logs):
    req, exp, fb, items = (logs.raw_requests, logs.raw_exposures, logs.raw_feedback,
                           logs.raw_items)
    assert len(req) > 100 and req["request_id"].is_unique
    assert (req["request_id"] == req["session_id"] + "-r"
            + req["request_index"].map("{:02d}".format)).all()
    assert not exp.duplicated(["request_id", "item_id"]).any()
    assert list(exp["request_id"]) == list(fb["request_id"])
    assert list(exp["item_id"]) == list(fb["item_id"])
    positions = exp.groupby("request_id")["position"].apply(list)
    assert len(positions) == len(req)
    assert all(p == list(range(S.LIST_LEN)) for p in positions)
    # behaviour
    watch = fb["watch_time_s"].to_numpy()
    dur = items.set_index("item_id").loc[fb["item_id"], "duration_s"].to_numpy()
    assert (watch >= 0).all() and (watch <= dur).all()
    assert ((watch > S.VALID_WATCH_SECONDS) == (fb["valid"] == 1)).all()
    assert (watch[fb["skip"] == 1] < 3.0).all() and (watch[fb["skip"] == 0] >= 3.0).all()
    assert (watch[fb["finish"] == 1] == dur[fb["finish"] == 1]).all()
    for b in ("valid", "finish", "like", "share", "collect", "skip", "exit_after_request"):
        assert set(fb[b].unique()) <= {0, 1}
    assert 0 < fb["valid"].mean() < 1 and fb["skip"].sum() > 0 and fb["like"].sum() > 0
    # predictions and actions
    preds = stack(exp["preds"])
    assert ((preds > 0) & (preds < 1)).all()
    assert ((stack(exp["cand_rank"]) >= 0) & (stack(exp["cand_rank"]) <= 1)).all()
    assert (np.abs(stack(exp["cand_z"])) <= 1).all()
    for df in (req, exp):
        act, mu = stack(df["action"]), stack(df["mu_bp"])
        assert (np.abs(act) <= 1).all() and (np.abs(mu) <= 1).all()
        assert (np.abs(act - mu) <= CFG.explore_half_width + 1e-6).all()
        assert np.abs(act - mu).max() > 0.5 * CFG.explore_half_width
    noise = stack(req["noise"])
    assert (np.abs(noise) <= CFG.explore_half_width).all()
    # sessions: contiguous request indices, one exit at the last request, same day, ts rising
    exits = fb.groupby("request_id")["exit_after_request"].agg(["min", "max"])
    assert (exits["min"] == exits["max"]).all()  # the flag is on every row of the request
    req = req.join(exits["max"].rename("exit"), on="request_id")
    day0 = pd.Timestamp(DS, tz="UTC").value // 10**6
    for _, g in req.groupby("session_id"):
        assert list(g["request_index"]) == list(range(len(g)))
        assert list(g["exit"]) == [0] * (len(g) - 1) + [1]
        assert (np.diff(g["ts_ms"].to_numpy()) > 0).all()
        assert g["user_id"].nunique() == 1 and g["device"].nunique() == 1
    assert ((req["ts_ms"] >= day0) & (req["ts_ms"] < day0 + 86_400_000)).all()
    assert (req["hour"] == (req["ts_ms"] - day0) // 3_600_000).all()
    lengths = req.groupby("session_id").size()
    assert lengths.max() <= CFG.max_requests and lengths.nunique() > 3


def test_no_exploration_means_action_equals_box_centre(world):
    quiet = simulate_day(world, FixedWeightsPolicy(), DS, explore=False)
    for df in (quiet.raw_requests, quiet.raw_exposures):
        assert np.array_equal(stack(df["action"]), stack(df["mu_bp"]))
        assert np.allclose(stack(df["mu_bp"]), default_action_norm(), atol=1e-7)
    assert (stack(quiet.raw_requests["noise"]) == 0).all()
    assert (quiet.raw_requests["explore_half_width"] == 0).all()


def test_per_candidate_exploration(world):
    cfg = dataclasses.replace(CFG, explore_per_candidate=True)
    logs = simulate_day(dataclasses.replace(world, cfg=cfg), FixedWeightsPolicy(), DS)
    exp = logs.raw_exposures
    act, mu = stack(exp["action"]), stack(exp["mu_bp"])
    assert (np.abs(act - mu) <= cfg.explore_half_width + 1e-6).all()
    spread = exp.assign(a0=act[:, 0]).groupby("request_id")["a0"].agg(np.ptp)
    assert (spread > 0).all()  # one draw per candidate: the exposed items differ
    req_act = logs.raw_requests.set_index("request_id")["action"]
    mean_act = exp.assign(a=list(act)).groupby("request_id")["a"].apply(
        lambda s: np.stack(s.to_numpy()).mean(0))
    assert np.allclose(stack(req_act.loc[mean_act.index]), stack(mean_act), atol=1e-6)


def test_logged_columns_rebuild_the_served_states(logs):
    """What the Spark job does, in numpy: every feature comes from a logged column."""
    req = logs.raw_requests.merge(logs.raw_users.drop(columns="ds"), on="user_id")
    per_req = logs.raw_feedback.groupby("request_id").agg(w=("watch_time_s", "sum"),
                                                          v=("valid", "sum"))
    req = req.join(per_req, on="request_id").sort_values(["session_id", "request_index"])
    g = req.groupby("session_id")
    req["watch_before"] = g["w"].cumsum() - req["w"]
    req["valid_before"] = g["v"].cumsum() - req["v"]
    ublk = F.user_block(req["age_bucket"], req["gender"], req["region"], req["activity"],
                        stack(req["interest"]), req["hour"], req["device"], req["network"],
                        req["request_index"], req["watch_before"], req["valid_before"])
    ustate = F.user_state(ublk, stack(req["cand_pred_mean"]), stack(req["cand_pred_std"]))
    served = logs.user_states.set_index("request_id").loc[req["request_id"], "user_state"]
    assert np.abs(ustate - stack(served)).max() < 1e-5
    exp = logs.raw_exposures.merge(logs.raw_items.drop(columns="ds"), on="item_id")
    exp = exp.merge(logs.pair_states, on=["request_id", "position"])
    iblk = F.item_block(stack(exp["item_vec"]), exp["duration_s"], exp["popularity"],
                        exp["category"])
    u_of = dict(zip(req["request_id"], ublk))
    rebuilt = np.concatenate([np.stack([u_of[r] for r in exp["request_id"]]), iblk,
                              stack(exp["preds"]), stack(exp["cand_rank"]),
                              stack(exp["cand_z"])], 1)
    assert np.abs(rebuilt - stack(exp["pair_state"])).max() < 1e-5


# --- features ----------------------------------------------------------------------------
def test_feature_blocks_by_hand():
    u = F.user_block(np.array([5]), np.array([1]), np.array([9]), np.array([0.5]),
                     np.arange(8, dtype=np.float32)[None] / 10, np.array([6]), np.array([2]),
                     np.array([1]), np.array([4]), np.array([20.0]), np.array([3]))
    expected = ([1, 1, 1, 0.5] + [i / 10 for i in range(8)] + [1.0, 0.0] + [0, 0, 1]
                + [1, 4 / 20, math.log1p(20) / 6, 0.3])
    assert u.dtype == np.float32 and u.shape == (1, S.D_USER)
    assert np.allclose(u[0], expected, atol=1e-6)
    u0 = F.user_block(0, 0, 0, 0.0, np.zeros(8), 0, 0, 0, 0, 0.0, 0)
    assert np.allclose(u0, [0] * 12 + [0, 1] + [1, 0, 0] + [0, 0, 0, 0], atol=1e-7)
    it = F.item_block(np.ones((1, 8)), np.array([30.0]), np.array([0.25]), np.array([7]))
    assert it.dtype == np.float32 and it.shape == (1, S.D_ITEM)
    assert np.allclose(it[0], [1] * 8 + [math.log1p(30) / 5, 0.25] + [0] * 7 + [1], atol=1e-6)


def test_candidate_stats_by_hand():
    # one request, 3 candidates, 3 heads; head 1 has a tie, head 2 is constant
    preds = np.array([[[0.1, 0.9, 0.5], [0.5, 0.9, 0.5], [0.3, 0.2, 0.5]]], dtype=np.float32)
    rank, z, mean, std = F.candidate_stats(preds)
    assert rank.dtype == z.dtype == mean.dtype == std.dtype == np.float32
    assert np.allclose(rank[0, :, 0], [1.0, 0.0, 0.5])
    assert np.allclose(rank[0, :, 1], [0.0, 0.5, 1.0])  # tie broken by candidate order
    assert np.allclose(rank[0, :, 2], [0.0, 0.5, 1.0])
    assert np.allclose(mean[0], [0.3, 2.0 / 3, 0.5])
    sd0 = np.std([0.1, 0.5, 0.3])
    assert np.allclose(std[0], [sd0, np.std([0.9, 0.9, 0.2]), 1e-6], rtol=1e-5)
    assert np.allclose(z[0, :, 0], np.array([-0.2, 0.2, 0.0]) / sd0 / 3, atol=1e-6)
    assert np.allclose(z[0, :, 2], 0.0)  # constant head: std floored, z = 0
    outlier = np.array([[[0.0]] * 19 + [[1.0]]], dtype=np.float32)  # z = sqrt(19) > 3
    assert np.isclose(F.candidate_stats(outlier)[1][0, -1, 0], 1.0)
    preds = np.random.default_rng(0).uniform(size=(1, 3, S.NUM_HEADS)).astype(np.float32)
    rank, z, mean, std = F.candidate_stats(preds)
    ps = F.pair_state(np.ones((1, S.D_USER)), np.full((1, 3, S.D_ITEM), 2.0), preds, rank, z)
    assert ps.shape == (1, 3, S.PAIR_STATE_DIM)
    assert (ps[0, :, :S.D_USER] == 1).all() and (ps[0, :, S.OFFSET_ITEM:S.OFFSET_PRED] == 2).all()
    assert np.array_equal(ps[0, :, S.OFFSET_PRED:S.OFFSET_CAND], preds[0])
    assert np.array_equal(ps[0, :, S.OFFSET_CAND:S.OFFSET_CAND + S.NUM_HEADS], rank[0])
    assert np.array_equal(ps[0, :, S.OFFSET_CAND + S.NUM_HEADS:], z[0])
    us = F.user_state(np.ones((1, S.D_USER)), mean, std)
    assert us.shape == (1, S.USER_STATE_DIM) and np.array_equal(us[0, S.D_USER:],
                                                                np.r_[mean[0], std[0]])


# --- serving -------------------------------------------------------------------------------
class Recorder:
    """Wraps a policy and keeps every pair_state it was shown."""

    def __init__(self, inner):
        self.inner, self.level, self.version, self.seen = inner, inner.level, inner.version, []

    def act(self, user_state, pair_state):
        self.seen.append(pair_state.copy())
        return self.inner.act(user_state, pair_state)


@pytest.mark.parametrize("explore", [False, True])
def test_exposed_items_are_the_top_five_by_fused_score(world, explore):
    rec = Recorder(FixedWeightsPolicy())
    logs = simulate_day(world, rec, DS, explore=explore)
    req, exp = logs.raw_requests, logs.raw_exposures
    checked = 0
    for t, states in enumerate(rec.seen):  # batch rows = the sessions active at step t
        rows = req[req["request_index"] == t]
        assert len(rows) == len(states)
        preds = states[..., S.OFFSET_PRED:S.OFFSET_CAND]  # [B, N, K]: every candidate
        score = log_fused_score(preds, stack(rows["action"])[:, None, :])  # [B, N]
        exposed = stack(exp.set_index("request_id").loc[rows["request_id"], "preds"])
        exposed = exposed.reshape(len(rows), S.LIST_LEN, S.NUM_HEADS)
        order = np.argsort(-score, axis=1, kind="stable")
        gap = np.take_along_axis(score, order[:, 4:6], 1)
        clear = gap[:, 0] - gap[:, 1] > 1e-5  # logged actions are float32: skip near-ties
        top = np.take_along_axis(preds, order[:, :S.LIST_LEN, None], 1)
        assert np.array_equal(top[clear], exposed[clear])
        checked += int(clear.sum())
    assert checked > 0.9 * len(req)


def test_torchscript_pair_policy_round_trip(tmp_path, world):
    import torch

    class Tilt(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # depends on the item block, so boxes differ between items of one request
            return torch.tanh(x[:, S.OFFSET_ITEM:S.OFFSET_ITEM + 10] - 0.3)

    path = tmp_path / "actor.pt"
    torch.jit.save(torch.jit.script(Tilt()), str(path))
    pol = TorchScriptPolicy(path, level="pair", version="tilt", expected_sha256=file_sha256(path),
                            chunk=97)
    logs = simulate_day(world, pol, DS, return_states=True)
    assert (logs.raw_requests["policy_version"] == "tilt").all()
    exp = logs.raw_exposures.merge(logs.pair_states, on=["request_id", "position"])
    states = stack(exp["pair_state"])
    mu = stack(exp["mu_bp"])
    assert np.allclose(mu, np.tanh(states[:, S.OFFSET_ITEM:S.OFFSET_ITEM + 10] - 0.3), atol=1e-6)
    spread = exp.assign(m0=mu[:, 0]).groupby("request_id")["m0"].agg(np.ptp)
    assert (spread > 0).mean() > 0.9
    mean_mu = exp.assign(m=list(mu)).groupby("request_id")["m"].apply(
        lambda s: np.stack(s.to_numpy()).mean(0))
    req_mu = logs.raw_requests.set_index("request_id").loc[mean_mu.index, "mu_bp"]
    assert np.allclose(stack(req_mu), stack(mean_mu), atol=1e-6)
    with pytest.raises(ValueError, match="checksum"):
        TorchScriptPolicy(path, level="pair", version="x", expected_sha256="0" * 64)


def test_torchscript_user_policy_and_shape_check(tmp_path, world):
    import torch

    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(x[:, :10])

    path = tmp_path / "user.pt"
    torch.jit.save(torch.jit.script(Flat()), str(path))
    pol = TorchScriptPolicy(path, level="user", version="flat")
    logs = simulate_day(world, pol, DS, return_states=True)
    us = logs.user_states.set_index("request_id").loc[logs.raw_requests["request_id"],
                                                      "user_state"]
    assert np.allclose(stack(logs.raw_requests["mu_bp"]), np.tanh(stack(us)[:, :10]), atol=1e-6)
    wrong = CallablePolicy(lambda u, p: np.zeros((len(u), 3)), "user", "wrong")
    with pytest.raises(ValueError, match="expected"):
        simulate_day(world, wrong, DS)


# --- the world -----------------------------------------------------------------------------
def test_miscalibration_depends_on_item_category_and_context(world):
    rng = np.random.default_rng(0)
    b, n = 400, 40
    users = rng.integers(0, CFG.n_users, b)
    items = rng.integers(0, CFG.n_items, (b, n))
    truth = world.true_probs(users, items, np.zeros(b, int))
    true_valid = truth.heads()[..., 0]
    preds = world.mtl_predictions(truth, items, np.zeros(b, int), np.full(b, 12), None)
    err = preds[..., 0] - true_valid
    cats = world.category[items]
    per_cat = np.array([err[cats == c].mean() for c in range(S.NUM_CATEGORIES)])
    assert np.ptp(per_cat) > 0.1, per_cat
    other_device = world.mtl_predictions(truth, items, np.ones(b, int), np.full(b, 12), None)
    assert np.abs(other_device - preds).mean() > 0.01
    night = world.mtl_predictions(truth, items, np.zeros(b, int), np.full(b, 0), None)
    assert np.abs(night - preds).mean() > 0.01
    calibrated = World.build(dataclasses.replace(CFG, miscalibration=0.0))
    t0 = calibrated.true_probs(users, items, np.zeros(b, int))
    p0 = calibrated.mtl_predictions(t0, items, np.zeros(b, int), np.full(b, 12), None)
    assert np.allclose(p0, np.clip(t0.heads(), 1e-4, 1 - 1e-4), atol=1e-6)


# --- ground truth --------------------------------------------------------------------------
def test_ground_truth_separates_good_and_bad_policies():
    fixed = evaluate_policy(CFG, FixedWeightsPolicy(), seed=5)
    assert fixed == evaluate_policy(CFG, FixedWeightsPolicy(), seed=5)
    assert fixed["users"] == CFG.n_users and fixed["uvc"] > 0 and fixed["udt"] > 0
    random_rank = FixedWeightsPolicy(np.r_[np.full(5, -1.0), np.zeros(5)], version="flat")
    bad = evaluate_policy(CFG, random_rank, seed=5)
    assert bad == evaluate_policy(CFG, random_rank, seed=5)
    assert bad["uvc"] < 0.8 * fixed["uvc"] and bad["udt"] < fixed["udt"]
    assert bad["sessions"] == fixed["sessions"]  # common random numbers: same sessions
    other = evaluate_policy(CFG, FixedWeightsPolicy(), seed=6, n_users=80)
    assert other["users"] == 80 and other != fixed


def test_state_layout_slices_tile_the_blocks():
    """The named positions of core.schema cover each block exactly once, in order."""
    from core import schema as S

    def cover(parts, n):
        idx = []
        for p in parts:
            idx += list(range(n)[p]) if isinstance(p, slice) else [p]
        return idx

    user = [S.U_AGE, S.U_GENDER, S.U_REGION, S.U_ACTIVITY, S.U_INTEREST, S.U_HOUR_SIN,
            S.U_HOUR_COS, S.U_DEVICE, S.U_NETWORK, S.U_REQUEST_INDEX, S.U_SESSION_WATCH,
            S.U_SESSION_VALID]
    assert cover(user, S.D_USER) == list(range(S.D_USER)) and S.D_USER == 21
    item = [S.I_VEC, S.I_DURATION, S.I_POPULARITY, S.I_CATEGORY]
    assert cover(item, S.D_ITEM) == list(range(S.D_ITEM)) and S.D_ITEM == 18
    pair = [S.PAIR_USER, S.PAIR_ITEM, S.PAIR_PRED, S.PAIR_CAND_RANK, S.PAIR_CAND_Z]
    assert cover(pair, S.PAIR_STATE_DIM) == list(range(S.PAIR_STATE_DIM)) == list(range(60))
    assert cover([slice(0, S.D_USER), S.USER_CAND_MEAN, S.USER_CAND_STD],
                 S.USER_STATE_DIM) == list(range(35))


def test_features_land_at_their_named_positions():
    from core import schema as S
    from sim.features import item_block, user_block

    u = user_block(age_bucket=[5], gender=[1], region=[9], activity=[0.5],
                   interest=[np.arange(8) / 10], hour=[6], device=[2], network=[1],
                   request_index=[4], session_watch_before_s=[np.e ** 6 - 1],
                   session_valid_before=[5])[0]
    assert u[S.U_AGE] == 1.0 and u[S.U_REGION] == 1.0 and u[S.U_NETWORK] == 1.0
    np.testing.assert_allclose(u[S.U_INTEREST], np.arange(8) / 10, rtol=1e-6)
    assert u[S.U_HOUR_SIN] == pytest.approx(1.0) and u[S.U_DEVICE].tolist() == [0, 0, 1]
    assert u[S.U_REQUEST_INDEX] == pytest.approx(4 / S.MAX_REQUESTS_PER_SESSION)
    assert u[S.U_SESSION_WATCH] == pytest.approx(1.0) and u[S.U_SESSION_VALID] == 0.5
    it = item_block(item_vec=[np.ones(8)], duration_s=[np.e ** 5 - 1], popularity=[0.25],
                    category=[3])[0]
    assert it[S.I_DURATION] == pytest.approx(1.0) and it[S.I_POPULARITY] == 0.25
    assert it[S.I_CATEGORY].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
