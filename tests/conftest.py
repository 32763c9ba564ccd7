"""Fixtures shared by the firmware-level tests, and the knobs that rerun the suite as another machine would.

``BL_TEST_SEED=N`` changes the seed of every model the suite trains through ``compress`` (the fixtures below
and every ``CompressConfig`` built without an explicit seed); ``BL_TEST_THREADS=N`` sets torch's intra-op
thread count for the whole run, compression included (``CompressConfig.threads``, 1 by default). A test
that passes only for one seed or thread count depends on a particular training run (a near-tie, an accuracy
just over its threshold) and is wrong (tests/near_ties.py). See docs/status.md, "Running the tests".
"""

import dataclasses
import os

import pytest
import torch

from batteryless.datasets import load_dataset
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, compress


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"{name} must be an integer, not {value!r}") from None


SEED = _env_int("BL_TEST_SEED") or 0
THREADS = _env_int("BL_TEST_THREADS")
if THREADS:
    torch.set_num_threads(THREADS)
if SEED or THREADS:
    # CompressConfig built without an explicit seed/threads follows the knobs (explicit values still win)
    _defaults = {"seed": SEED, **({"threads": THREADS} if THREADS else {})}
    _init = CompressConfig.__init__

    def _init_with_env(self, *args, **kwargs):
        for key, value in _defaults.items():
            kwargs.setdefault(key, value)
        _init(self, *args, **kwargs)

    CompressConfig.__init__ = _init_with_env
    assert {f.name for f in dataclasses.fields(CompressConfig)} >= set(_defaults)


def pytest_report_header(config):
    return f"batteryless: BL_TEST_SEED={SEED} BL_TEST_THREADS={THREADS or 'torch default (compress: 1)'}"


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
    return load_dataset("digits")  # the split compress holds out, whatever seed trains (split_seed)
