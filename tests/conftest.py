"""Fixtures shared by the firmware-level tests."""

import pytest

from batteryless.datasets import load_dataset
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, compress

# A short compression schedule: real artifacts (both paths, 16- and 8-bit weights), not accurate models.
QUICK = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Digits MLP (k = 16, 16-bit weights) and CNN (k = 8, 8-bit weights), compressed once per worker."""
    d = tmp_path_factory.mktemp("art")
    out = {}
    for model, k, bits in (("mlp", 16, 16), ("cnn", 8, 8)):
        p = d / f"{model}.bl"
        compress(model, "digits", out=p, config=CompressConfig(block_size=k, weight_bits=bits, **QUICK))
        out[model] = p
    return out


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")
