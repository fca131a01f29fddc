"""mtf-rl: daily retraining of a multi-task-fusion RL policy (EnhancedRL)."""

__version__ = "0.1.0"
