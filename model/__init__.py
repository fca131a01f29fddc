"""PyTorch side of mtf-rl: the EnhancedRL learning core (docs/ALGORITHM.md sections 3-7).

Light at import (the Airflow DAG and `pipeline.config` import `model.config` at parse time):
this package imports nothing; each submodule imports torch / numpy itself.

- `model.config`       EnhancedRLConfig (every hyper-parameter, one doc line each)
- `model.networks`     PairActor, FactorizedPairActor, UserActor, EnsembleLinear, CriticEnsemble
- `model.losses`       box_overshoot, box_penalty, target_multiplier, list_td_target,
                       pair_td_target, critic_loss, actor_loss (-> ActorLoss)
- `model.enhanced_rl`  EnhancedRL (update / act / state_dict), BATCH_SHAPES, check_batch
- `model.export`       export_actor, load_actor, file_sha256, check_parity (TorchScript);
                       export_onnx, onnx_session, onnx_parity (ONNX, onnxruntime)
- `model.metrics`      discounted_returns, ncis, mtf_gauc (numpy)
- `model.loader`       EnhancedStateLoader: Petastorm reader of a pinned file list, order a
                       function of (seed, epoch, shard), `skip` for resume
- `model.distributed`  torchrun / gloo helpers (gradient all-reduce, broadcast, checksums)
- `model.learners`     fixed, CEM, BatchRL-MTF, UnifiedRL, EnhancedRL behind one protocol

The trainer that feeds it from a pinned Delta snapshot is the job `jobs/train.py`.
"""
