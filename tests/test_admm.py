"""ADMM toward the block-circulant fixed-point set: residual bound, projection into the constraint set,
structured pruning."""

import numpy as np
import pytest
import torch
from torch import nn

from batteryless.models.train import evaluate_float, fit
from batteryless.rad.admm import AdmmConfig, admm_circulant, project
from batteryless.rad.circulant import BlockCirculantLinear, expand_blocks, project_dense
from batteryless.rad.quantize import weight_frac

RESIDUAL_BOUND = 0.05  # stated bound on ‖W − Z‖ / ‖W‖ after the default 12 rounds


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 32)) * 1.5
    y = rng.integers(0, 4, 800)
    x = (centers[y] + rng.normal(size=(800, 32))).astype(np.float32)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    fit(net, x[:600], y[:600], epochs=15, lr=3e-3)
    return net, x, y


def test_admm_residual_falls_below_bound(problem):
    net, x, y = problem
    import copy

    cfg = AdmmConfig(retrain_epochs=5)
    new, hist = admm_circulant(copy.deepcopy(net), {0: 8, 2: 8, 4: 4}, x[:600], y[:600], cfg)
    first = hist.rounds[0]["residual"]
    last = hist.rounds[-1]["residual"]
    assert set(last) == {"0", "2", "4"}
    for layer, value in last.items():
        assert value < RESIDUAL_BOUND, (layer, value)
        assert value < first[layer]
    assert [r["rho"] for r in hist.rounds] == sorted(r["rho"] for r in hist.rounds)  # ρ grows
    # the result lives in the constraint set: circulant parameterisation, weights on the 16-bit grid
    for i in (0, 2, 4):
        layer = new[i]
        assert isinstance(layer, BlockCirculantLinear)
        w = layer.weight.detach().double()
        f = weight_frac(w.numpy(), 16)
        assert torch.equal(torch.round(w * 2.0**f), w * 2.0**f)
    assert evaluate_float(new, x[600:], y[600:]) >= evaluate_float(net, x[600:], y[600:]) - 0.05


def test_projection_lands_in_the_set_and_prunes_whole_blocks():
    torch.manual_seed(3)
    a = torch.randn(16, 24, dtype=torch.double)
    z = project(a, 8, 8, prune_ratio=0.5)
    w = project_dense(z, 8)
    assert torch.allclose(expand_blocks(w, 16, 24), z)  # block-circulant
    f = weight_frac(w.numpy(), 8)
    q = w * 2.0**f
    assert torch.equal(torch.round(q), q) and q.abs().max() <= 128  # 8-bit grid
    zero_blocks = int((w.flatten(2).abs().sum(2) == 0).sum())
    assert zero_blocks == 3  # half of the 2 × 3 blocks


def test_pruned_blocks_stay_zero_after_retraining(problem):
    net, x, y = problem
    import copy

    cfg = AdmmConfig(rounds=3, retrain_epochs=3, prune_ratio=0.5)
    new, _ = admm_circulant(copy.deepcopy(net), {0: 8, 2: 8}, x[:600], y[:600], cfg)
    for i in (0, 2):
        mask = new[i].block_mask
        w = new[i].weight.detach()
        assert int((mask == 0).sum()) == mask.numel() // 2
        assert torch.all(w[mask == 0] == 0)


def test_pruning_keeps_no_block_that_reads_only_pruned_rows():
    """Block pruning follows the chain: a layer keeps no block whose input columns the previous layer's
    pruning made constant. Hand-made weights where independent pruning (largest norms per layer) would keep
    only such blocks: conv's block row 0 is the only strong one, the classifier's strongest blocks read the
    channels of rows 1-3 (the digits CNN at 87.5 % fell to chance this way)."""
    from batteryless.rad.admm import _prune_chain
    from batteryless.rad.circulant import BlockCirculantConv, prune_mask

    torch.manual_seed(0)
    conv = BlockCirculantConv(2, 8, 16, (3, 3), 4, (1, 1), (1, 1))  # p = 4 block rows (channels 4i…4i+3)
    fc = BlockCirculantLinear(16 * 16, 10, 8)  # column block j = channel j // 2 (16 positions per channel)
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)
    with torch.no_grad():
        conv.weight.mul_(0.01)
        conv.weight[0] *= 1000.0  # block row 0 is the one kept
        fc.weight.mul_(0.01)
        fc.weight[:, 8:] *= 1000.0  # the classifier's strong blocks read channels 4…15 (rows 1-3)
    independent = prune_mask(fc.weight, 0.75)
    assert independent[:, :8].sum() == 0  # the old way keeps only blocks that read pruned channels
    _prune_chain(net, 0.75, torch.zeros(1, 8, 4, 4))
    kept_rows = conv.block_mask.bool().any(dim=1)
    assert kept_rows.tolist() == [True, False, False, False]
    kept = fc.block_mask.bool()
    assert kept.sum() == 16 and kept[:, 8:].sum() == 0  # every kept block reads a channel of row 0
