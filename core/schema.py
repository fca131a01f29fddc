"""Data contracts shared by the simulator, the Spark jobs and the trainer.

Every dimension, head order and feature offset lives here, once. The simulator
(numpy, at serving time) and the Spark job (`build_enhanced_state`, offline) both
build the same state vectors from these definitions; a test checks they agree.
"""

from __future__ import annotations

# --- lists and actions -------------------------------------------------------
LIST_LEN = 5
"""l: items exposed per request (ALGORITHM.md section 1)."""

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
# User block (shared by every pair of a request), D_USER values:
#   0  age_bucket / (NUM_AGE_BUCKETS - 1)
#   1  gender (0/1)
#   2  region / (NUM_REGIONS - 1)
#   3  activity (0..1)
#   4..11  interest[8]
#   12 sin(2 pi hour / 24)   13 cos(2 pi hour / 24)
#   14..16 device one-hot (3)
#   17 network (0 wifi, 1 cellular)
#   18 request_index / MAX_REQUESTS_PER_SESSION       (request_index is 0-based)
#   19 log1p(session watch seconds before this request) / 6
#   20 (session valid count before this request) / 10
D_USER = 21
# Item block, D_ITEM values:
#   0..7  item_vec[8]
#   8     log1p(duration_s) / 5
#   9     popularity (0..1)
#   10..17 category one-hot (8)
D_ITEM = 18
# Prediction block: the pair's NUM_HEADS predictions, HEADS order.
# Candidate-set block: cand_rank[NUM_HEADS] (rank of the pair's prediction among the
# request's N candidates, 0 = highest, divided by N - 1) then cand_z[NUM_HEADS]
# (z-score of the prediction within the candidate set, clipped to [-3, 3], divided by 3).
D_CAND = 2 * NUM_HEADS
PAIR_STATE_DIM = D_USER + D_ITEM + NUM_HEADS + D_CAND  # 60

OFFSET_USER = 0
OFFSET_ITEM = D_USER
OFFSET_PRED = D_USER + D_ITEM
OFFSET_CAND = OFFSET_PRED + NUM_HEADS

# User-level state (UnifiedRL / BatchRL-MTF): the user block, then the mean and the
# standard deviation of each head's prediction over the request's candidate set.
USER_STATE_DIM = D_USER + 2 * NUM_HEADS  # 35

# --- rewards ------------------------------------------------------------------
# Two critic sets split the reward (ALGORITHM.md section 2):
#   set 0 ("watch"): w_watch * watch_time_s / 60
#   set 1 ("other"): w_valid*valid + w_like*like + w_share*share + w_collect*collect
NUM_CRITIC_SETS = 2
VALID_WATCH_SECONDS = 10.0
"""valid consumption = watch time > 10 s."""
