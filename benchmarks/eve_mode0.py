"""EVE's modes against the single-mode model, per seed, for training options (any ``EveConfig`` field):
session 5 the options that protect mode 0 (``mode0_weight``: its loss weight in the sandwich;
``mode0_epochs``: mode-0-only fine-tuning after it), session 6 the sandwich's budget and the smaller modes'
options (``lr``, ``epochs``, ``small_weight``, ``label_mix``, ``mode_bias``, ``bias_epochs``).

Per (model, seed, variant): the integer (spec) accuracy of every mode on the digits test split (359 samples:
one sample is 0.28 points) with the benchmark's ladders (``EVE_SETTINGS`` of benchmarks/eve.py), and the
single-mode model (``{"single": true}``). ADMM is run once per process and reused (deep copy) by every
variant of that seed: the variants differ only after it. Rows are merged into
benchmarks/results/eve_mode0.json (keyed by model, seed, variant), so seeds can run as separate processes:

    nice .venv/bin/python benchmarks/eve_mode0.py --model cnn --seed 0 \
        --variants '[{"mode0_weight": 1.0, "mode0_epochs": 0}, {"single": true}, {}]'
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batteryless.rad.compress as rc  # noqa: E402
from batteryless.eve.train import EveConfig  # noqa: E402
from eve import EVE_SETTINGS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "eve_mode0.json"


def _cache_admm() -> None:
    """ADMM once per block choice in this process; each variant trains its own copy."""
    orig, cache = rc.admm_circulant, {}

    def cached(net, blocks, *a, **k):
        key = repr(blocks)
        if key not in cache:
            cache[key] = orig(net, blocks, *a, **k)
        circ, hist = cache[key]
        return _fresh_classes(copy.deepcopy(circ)), hist

    rc.admm_circulant = cached


def _fresh_classes(net):
    """torch.nn.utils.parametrize gives a parametrized module its own class and adds a property per
    parametrized tensor to it; a deep copy shares that class, so a bias parametrization registered on one
    variant's copy would appear (broken) on the next. Each copy gets its own subclass."""
    for m in net.modules():
        if hasattr(m, "parametrizations"):
            m.__class__ = type(m.__class__.__name__, (m.__class__,), {})
    return net


def run(model: str, seed: int, variant: dict) -> list[float]:
    if variant.get("single"):
        art, _ = rc.compress(model, "digits", out=None, config=rc.CompressConfig(seed=seed))
        return [art.metrics["reference_accuracy"]]
    s = EVE_SETTINGS.get(model, {})
    base = dict(keep=s.get("keep"), width=s.get("width"), layer_width=s.get("layer_width", {}))
    cfg = EveConfig(**{**base, **variant})  # a variant may replace the ladder too, and its length K
    k = len(cfg.keep or cfg.width or [None] * 3)
    conf = rc.CompressConfig(modes=k, eve=cfg, layer_blocks=s.get("layer_blocks", {}), seed=seed)
    art, _ = rc.compress(model, "digits", out=None, config=conf)
    return [m["reference_accuracy"] for m in art.metrics["modes"]]


def merge(rows: list[dict], path: Path = RESULTS) -> None:
    doc = json.loads(path.read_text()) if path.exists() else {}
    old = doc.get("rows", [])
    key = lambda r: (r["model"], r["seed"], json.dumps(r["variant"], sort_keys=True))  # noqa: E731
    by = {key(r): r for r in old}
    by.update({key(r): r for r in rows})
    out = sorted(by.values(), key=key)
    path.write_text(json.dumps({**doc, "rows": out}, indent=1) + "\n")  # other keys (the note) kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cnn", choices=sorted(EVE_SETTINGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default='[{}, {"single": true}]', help="JSON list of EveConfig overrides")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON file the rows are merged into")
    args = ap.parse_args()
    torch.set_num_threads(1)
    _cache_admm()
    for v in json.loads(args.variants):
        t0 = time.perf_counter()
        accs = run(args.model, args.seed, v)
        row = dict(
            model=args.model,
            seed=args.seed,
            variant=v,
            accuracy=accs,
            seconds=round(time.perf_counter() - t0, 1),
        )
        print(json.dumps(row), flush=True)
        merge([row], args.results)


if __name__ == "__main__":
    main()
