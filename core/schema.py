"""Data contracts shared by the simulator, the Spark jobs and the trainer.

Every dimension, head order, feature position and feature scale lives here, once. The simulator
(numpy, at serving time) and the Spark job (`build_enhanced_state`, offline) both
build the same state vectors from these definitions; a test checks they agree.
"""

from __future__ import annotations

# --- lists and actions -------------------------------------------------------
LIST_LEN = 5
"""l: items exposed per request (docs/ALGORITHM.md section 1)."""

ACTION_DIM = 10
"""(power_1..5, bias_1..5) for the 5 fused objectives."""

MAX_REQUESTS_PER_SESSION = 20
"""Hard cap on requests in one session (normalises the request index feature)."""

# --- MTL heads ---------------------------------------------------------------
HEADS: tuple[str, ...] = ("valid", "watch", "finish", "like", "share", "collect", "skip")
"""MTL prediction heads, in array order. All predictions are probabilities in [0, 1];
`watch` is the predicted fraction of the item's duration that will be watched."""
NUM_HEADS = len(HEADS)

OBJECTIVES: tuple[str, ...] = ("valid", "watch", "finish", "interact", "noskip")
"""The 5 fused objectives. Objective i is `pred[OBJECTIVE_HEADS[i]]`, except `noskip`
which is `1 - pred[skip]` (a negative head turned into a positive objective so that
power >= 0 and bias > 0 hold for every factor)."""
OBJECTIVE_HEADS: tuple[int, ...] = (0, 1, 2, 3, 6)

# Physical ranges of the action: a_norm in [-1, 1] maps affinely to [lo, hi].
POWER_RANGE = (0.0, 2.0)
BIAS_RANGE = (0.01, 0.51)

# Production default fusion (the "fixed weights" policy): power 1, bias 0.1.
DEFAULT_POWER = 1.0
DEFAULT_BIAS = 0.1

# --- categorical vocabularies ---------------------------------------------
NUM_AGE_BUCKETS = 6
NUM_REGIONS = 10
NUM_DEVICES = 3
NUM_CATEGORIES = 8
INTEREST_DIM = 8
ITEM_VEC_DIM = 8

# --- state layout -------------------------------------------------------------
# Scales of the state features (the simulator's numpy features and the Spark job both read
# them from here).
SESSION_WATCH_LOG_SCALE = 6.0
"""User block: log1p(session watch seconds before this request) / this."""
SESSION_VALID_SCALE = 10.0
"""User block: (session valid count before this request) / this."""
DURATION_LOG_SCALE = 5.0
"""Item block: log1p(duration_s) / this."""
CAND_Z_CLIP = 3.0
"""Candidate block: z-scores are clipped to [-this, this], then divided by this."""
CAND_STD_FLOOR = 1e-6
"""Candidate block: the per-head standard deviation used for z is floored at this."""

# User block (shared by every pair of a request), D_USER values, in this order:
U_AGE = 0                                   # age_bucket / (NUM_AGE_BUCKETS - 1)
U_GENDER = 1                                # gender (0/1)
U_REGION = 2                                # region / (NUM_REGIONS - 1)
U_ACTIVITY = 3                              # activity (0..1)
U_INTEREST = slice(4, 4 + INTEREST_DIM)     # interest[8]
U_HOUR_SIN = U_INTEREST.stop                # sin(2 pi hour / 24)
U_HOUR_COS = U_HOUR_SIN + 1                 # cos(2 pi hour / 24)
U_DEVICE = slice(U_HOUR_COS + 1, U_HOUR_COS + 1 + NUM_DEVICES)  # device one-hot
U_NETWORK = U_DEVICE.stop                   # network (0 wifi, 1 cellular)
U_REQUEST_INDEX = U_NETWORK + 1             # request_index / MAX_REQUESTS_PER_SESSION (0-based)
U_SESSION_WATCH = U_REQUEST_INDEX + 1       # log1p(session watch s before) / SESSION_WATCH_...
U_SESSION_VALID = U_SESSION_WATCH + 1       # (session valid count before) / SESSION_VALID_SCALE
D_USER = U_SESSION_VALID + 1  # 21

# Item block, D_ITEM values:
I_VEC = slice(0, ITEM_VEC_DIM)              # item_vec[8]
I_DURATION = I_VEC.stop                     # log1p(duration_s) / DURATION_LOG_SCALE
I_POPULARITY = I_DURATION + 1               # popularity (0..1)
I_CATEGORY = slice(I_POPULARITY + 1, I_POPULARITY + 1 + NUM_CATEGORIES)  # category one-hot
D_ITEM = I_CATEGORY.stop  # 18

# Prediction block: the pair's NUM_HEADS predictions, HEADS order.
# Candidate-set block: cand_rank[NUM_HEADS] (rank of the pair's prediction among the
# request's N candidates, 0 = highest, divided by N - 1) then cand_z[NUM_HEADS]
# (z-score of the prediction within the candidate set, clipped to [-CAND_Z_CLIP,
# CAND_Z_CLIP], divided by CAND_Z_CLIP).
D_CAND = 2 * NUM_HEADS
PAIR_STATE_DIM = D_USER + D_ITEM + NUM_HEADS + D_CAND  # 60

OFFSET_USER = 0
OFFSET_ITEM = D_USER
OFFSET_PRED = D_USER + D_ITEM
OFFSET_CAND = OFFSET_PRED + NUM_HEADS

# The blocks of a pair state, as slices of its last axis.
PAIR_USER = slice(OFFSET_USER, OFFSET_USER + D_USER)
PAIR_ITEM = slice(OFFSET_ITEM, OFFSET_ITEM + D_ITEM)
PAIR_PRED = slice(OFFSET_PRED, OFFSET_PRED + NUM_HEADS)
PAIR_CAND_RANK = slice(OFFSET_CAND, OFFSET_CAND + NUM_HEADS)
PAIR_CAND_Z = slice(OFFSET_CAND + NUM_HEADS, OFFSET_CAND + 2 * NUM_HEADS)

# User-level state (UnifiedRL / BatchRL-MTF): the user block, then the mean and the
# standard deviation of each head's prediction over the request's candidate set.
USER_STATE_DIM = D_USER + 2 * NUM_HEADS  # 35
USER_CAND_MEAN = slice(D_USER, D_USER + NUM_HEADS)
USER_CAND_STD = slice(D_USER + NUM_HEADS, D_USER + 2 * NUM_HEADS)

# --- rewards ------------------------------------------------------------------
# Two critic sets split the reward (docs/ALGORITHM.md section 2):
#   set 0 ("watch"): w_watch * watch_time_s / 60
#   set 1 ("other"): w_valid*valid + w_like*like + w_share*share + w_collect*collect
NUM_CRITIC_SETS = 2
VALID_WATCH_SECONDS = 10.0
"""valid consumption = watch time > 10 s."""
