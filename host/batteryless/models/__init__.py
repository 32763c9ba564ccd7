"""The model zoo and the checks every model passes before compression.

- :func:`build_model` builds a zoo model (:data:`ZOO`) for a dataset's input shape and class count.
- :func:`check_supported` refuses models the toolchain cannot compile, naming the layer path and type.
- :func:`fold_batchnorm` folds BatchNorm into the preceding Conv/Linear (returns a new flat Sequential).
- :func:`train_float` / :func:`evaluate_float`: a plain, seeded float training loop on CPU.
- :func:`load_model`: a zoo name, a user's model file or ``module.py:factory`` → a module, trained or not.
"""

from __future__ import annotations

from batteryless.models.check import SUPPORTED_LAYERS, check_supported, fold_batchnorm
from batteryless.models.load import LoadedModel, load_model
from batteryless.models.train import evaluate_float, train_float
from batteryless.models.zoo import ZOO, ZooEntry, build_model, list_models, models

__all__ = [
    "SUPPORTED_LAYERS",
    "ZOO",
    "LoadedModel",
    "ZooEntry",
    "build_model",
    "check_supported",
    "evaluate_float",
    "fold_batchnorm",
    "list_models",
    "load_model",
    "models",
    "train_float",
]
