"""What ``compress`` feeds the model: the normalisation it expects, the normalised splits, and the check that
the dense model's accuracy on those inputs is plausible (docs/datasets.md, "Normalisation").

A model trained by its owner on per-feature standardised data and fed one scalar mean/std scores near chance;
nothing downstream can tell, so the accuracy is compared with the majority-class rate of the test split
(what a model that ignores its input scores) before anything is compressed, and, for a model that arrived
trained, with the accuracy under each other normalisation kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batteryless.datasets.base import Dataset
from batteryless.errors import UsageError
from batteryless.normalisation import KINDS, describe, fit_normalisation, given_normalisation, normalise

# Rule constants (docs/datasets.md): warn when the model keeps less than this share of the gap between chance
# and 100 % (or of its owner's expected gap over chance) ...
KEPT_SHARE = 0.5
# ... and name another normalisation when it scores at least this share of that gap better.
BETTER_SHARE = 0.25
# Normalised training inputs beyond this magnitude mean the statistics do not fit the data (e.g. a given std
# far too small); int16 inputs then lose the sample's detail to the few integer bits left.
MAX_NORMALISED = 1e4


def resolve_normalisation(choice: Any, ds: Dataset) -> dict[str, Any]:
    """``choice``: a kind (none | scalar | per-channel | per-feature), or the user's own statistics as a
    mapping with ``mean`` and ``std`` (numbers or arrays, see ``given_normalisation``)."""
    if choice is None:
        choice = "scalar"
    if isinstance(choice, str):
        if choice not in KINDS:
            raise UsageError(
                f"unknown normalisation {choice!r}; choose one of {', '.join(KINDS)} "
                "or give mean and std arrays"
            )
        return fit_normalisation(choice, ds.x_train)
    if isinstance(choice, dict) and "mean" in choice and "std" in choice:
        return given_normalisation(choice["mean"], choice["std"], ds.input_shape)
    raise UsageError(
        f"normalisation must be one of {', '.join(KINDS)} or a mapping with 'mean' and 'std', "
        f"not {type(choice).__name__}"
    )


def normalised_splits(
    ds: Dataset, norm: dict[str, Any], warnings: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (x_train, x_test) as the model sees them; an implausible range goes to ``warnings``."""
    xtr = normalise(norm, ds.input_shape, ds.x_train)
    xte = normalise(norm, ds.input_shape, ds.x_test)
    peak = float(max(np.abs(xtr).max(), np.abs(xte).max()))
    if peak > MAX_NORMALISED:
        warnings.append(
            f"normalised inputs reach {peak:.3g} with normalisation {describe(norm)}: the statistics do not "
            "fit the data (check the normalisation the model expects)"
        )
    return xtr.astype(np.float32), xte.astype(np.float32)


def chance_accuracy(y: np.ndarray) -> float:
    """The majority-class rate: what a model that ignores its input scores on these labels."""
    counts = np.bincount(np.asarray(y, dtype=np.int64))
    return float(counts.max() / counts.sum()) if counts.sum() else 0.0


def kept_share(acc: float, chance: float) -> float:
    """Chance-adjusted accuracy: 0 at chance, 1 at 100 % (negative below chance)."""
    return (acc - chance) / (1.0 - chance) if chance < 1.0 else 1.0


def accuracy_warnings(
    net,
    ds: Dataset,
    norm: dict[str, Any],
    dense_acc: float,
    *,
    pretrained: bool,
    expected: float | None = None,
) -> tuple[list[str], dict[str, float]]:
    """Warnings about the dense model's accuracy on the tool's inputs, and (for a model that arrived
    trained) its accuracy under each fitted normalisation kind. The rule (docs/datasets.md):

    chance = majority-class rate of the test split; kept = (acc − chance) / (1 − chance). Warn when kept <
    KEPT_SHARE (or, with the owner's ``expected`` accuracy, when kept < KEPT_SHARE · kept(expected)). For a
    trained model, also warn when another kind scores ≥ BETTER_SHARE · (1 − chance) higher, naming it.
    """
    from batteryless.models.train import evaluate_float

    chance = chance_accuracy(ds.y_test)
    kept = kept_share(dense_acc, chance)
    target = KEPT_SHARE * (kept_share(expected, chance) if expected is not None else 1.0)
    by_kind: dict[str, float] = {}
    if pretrained:
        for kind in KINDS:
            if kind == norm.get("kind") and norm.get("source") == "train":
                by_kind[kind] = dense_acc
                continue
            other = fit_normalisation(kind, ds.x_train)
            x = normalise(other, ds.input_shape, ds.x_test).astype(np.float32)
            by_kind[kind] = evaluate_float(net, x, ds.y_test) if np.all(np.isfinite(x)) else float("nan")
    out: list[str] = []
    if kept < target:
        owner = f" (its owner expects {100 * expected:.1f} %)" if expected is not None else ""
        out.append(
            f"the dense model scores {100 * dense_acc:.1f} % on the test split{owner} with normalisation "
            f"{describe(norm)}, where always answering the most common class scores {100 * chance:.1f} %: "
            "if the model was trained on differently normalised inputs, say which "
            "(normalisation / --normalise)"
        )
    best = max((k for k in by_kind if np.isfinite(by_kind[k])), key=lambda k: by_kind[k], default=None)
    if best is not None and by_kind[best] - dense_acc >= BETTER_SHARE * (1.0 - chance):
        out.append(
            f"the dense model scores {100 * by_kind[best]:.1f} % with normalisation {best!r} but "
            f"{100 * dense_acc:.1f} % with {describe(norm)}: it was probably trained on {best} inputs "
            f"(normalisation={best!r} / --normalise {best})"
        )
    return out, by_kind
