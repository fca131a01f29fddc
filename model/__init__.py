"""PyTorch side: networks, losses, the EnhancedRL learner, Petastorm loader, trainer,
export and offline metrics. Light at import: submodules import torch themselves."""
