"""Input normalisation: which one a model expects, how it is fitted, stored in the artifact and applied.

A model is trained on inputs ``(x − mean) / std``; the device must be fed the same transform, so the
artifact records it (manifest field ``normalisation``) and :func:`batteryless.spec.quantize_input` applies it
before quantising to int16. Kinds (layout of ``mean`` and ``std`` in the manifest):

- ``none``: mean 0, std 1 (inputs used as they are; both stored as numbers);
- ``scalar``: one mean and one std over the whole training split (numbers);
- ``per-channel``: one pair per input channel, statistics over samples and positions (lists of C numbers);
- ``per-feature``: one pair per input element, statistics over samples (lists of prod(input_shape) numbers,
  C-order of the channels-first sample).

``source`` says where the numbers came from: ``"train"`` (fitted on the training split) or ``"given"`` (the
user's own arrays). A zero standard deviation (a constant feature/channel) is stored as 1 so that the
transform is defined; the model sees that feature as its offset from the mean, 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from batteryless.errors import ArtifactError, UsageError

KINDS = ("none", "scalar", "per-channel", "per-feature")


def _length(kind: str, input_shape: tuple[int, ...]) -> int | None:
    """How many numbers ``mean`` and ``std`` hold for ``kind`` (None: a single number)."""
    if kind == "per-channel":
        return int(input_shape[0])
    if kind == "per-feature":
        return int(math.prod(input_shape))
    return None


def _safe_std(std: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64)
    return np.where(std > 0, std, 1.0)


def fit_normalisation(kind: str, x_train: np.ndarray) -> dict[str, Any]:
    """Statistics of ``kind`` over a training split x (N, *input_shape), in float64."""
    if kind not in KINDS:
        raise UsageError(f"unknown normalisation {kind!r}; choose one of {', '.join(KINDS)}")
    x = np.asarray(x_train, dtype=np.float64)
    if kind == "none":
        mean, std = 0.0, 1.0
    elif kind == "scalar":
        mean, std = float(x.mean()), float(_safe_std(x.std()))
    elif kind == "per-channel":
        axes = (0, *range(2, x.ndim))
        mean, std = x.mean(axis=axes).tolist(), _safe_std(x.std(axis=axes)).tolist()
    else:
        mean, std = x.mean(axis=0).ravel().tolist(), _safe_std(x.std(axis=0)).ravel().tolist()
    return {"kind": kind, "source": "train", "mean": mean, "std": std}


def given_normalisation(mean, std, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The user's own statistics. Each of ``mean``/``std`` is a number, C numbers (one per channel) or
    prod(input_shape) numbers (one per input element, any shape with that many); both must have one layout."""
    m = np.asarray(mean, dtype=np.float64).ravel()
    s = np.asarray(std, dtype=np.float64).ravel()
    layouts = {1: "scalar", int(input_shape[0]): "per-channel", int(math.prod(input_shape)): "per-feature"}

    def kind_of(a: np.ndarray, what: str) -> str:
        if a.size not in layouts:
            raise UsageError(
                f"normalisation {what} has {a.size} values; give 1, {input_shape[0]} (one per channel) or "
                f"{math.prod(input_shape)} (one per input element of shape {tuple(input_shape)})"
            )
        return layouts[a.size]

    km, ks = kind_of(m, "mean"), kind_of(s, "std")
    if m.size != s.size:  # e.g. a per-channel mean with one std: broadcast the smaller one
        if m.size == 1:
            m, km = np.full(s.size, m[0]), ks
        elif s.size == 1:
            s = np.full(m.size, s[0])
        else:
            raise UsageError(f"normalisation mean has {m.size} values but std has {s.size}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s))) or np.any(s <= 0):
        raise UsageError("normalisation mean and std must be finite numbers, std > 0")
    if km == "scalar":
        return {"kind": "scalar", "source": "given", "mean": float(m[0]), "std": float(s[0])}
    return {"kind": km, "source": "given", "mean": m.tolist(), "std": s.tolist()}


def normalisation_arrays(norm: dict[str, Any], input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``mean`` and ``std`` shaped to broadcast against a batch (N, *input_shape)."""
    kind = norm.get("kind", "scalar")
    mean = np.asarray(norm["mean"], dtype=np.float64)
    std = np.asarray(norm["std"], dtype=np.float64)
    if kind == "per-channel":
        shape = (int(input_shape[0]),) + (1,) * (len(input_shape) - 1)
        return mean.reshape(shape), std.reshape(shape)
    if kind == "per-feature":
        return mean.reshape(input_shape), std.reshape(input_shape)
    return mean, std


def normalise(norm: dict[str, Any], input_shape: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """``(x − mean) / std`` in float64 (what the integer spec quantises)."""
    mean, std = normalisation_arrays(norm, input_shape)
    return (np.asarray(x, dtype=np.float64) - mean) / std


def describe(norm: dict[str, Any]) -> str:
    kind = norm.get("kind", "scalar")
    if kind in ("none", "scalar"):
        return f"{kind} (mean {norm['mean']:.6g}, std {norm['std']:.6g})" if kind == "scalar" else "none"
    return f"{kind} ({len(norm['mean'])} mean/std pairs, {norm.get('source', 'train')})"


def validate_normalisation(norm: Any, input_shape: tuple[int, ...], where: str = "manifest") -> None:
    """Raise ArtifactError naming the field when the stored normalisation is malformed."""
    if not isinstance(norm, dict):
        raise ArtifactError(f"{where}: field 'normalisation' must be an object")
    kind = norm.get("kind", "scalar")
    if kind not in KINDS:
        raise ArtifactError(
            f"{where}: field 'normalisation.kind' = {kind!r} is not one of {', '.join(KINDS)}"
        )
    source = norm.get("source", "train")
    if source not in ("train", "given"):
        raise ArtifactError(
            f"{where}: field 'normalisation.source' must be 'train' or 'given', is {source!r}"
        )
    n = _length(kind, input_shape)
    for key in ("mean", "std"):
        v = norm.get(key)
        if n is None:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (key == "mean" or v > 0)
            if not ok:
                raise ArtifactError(
                    f"{where}: field 'normalisation.{key}' must be a finite number (std > 0) "
                    f"for kind {kind!r}"
                )
            if kind == "none" and v != (0 if key == "mean" else 1):
                raise ArtifactError(
                    f"{where}: field 'normalisation.{key}' must be {0 if key == 'mean' else 1} "
                    "for kind 'none'"
                )
            continue
        if (
            not isinstance(v, list)
            or len(v) != n
            or not all(isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) for e in v)
            or (key == "std" and not all(e > 0 for e in v))
        ):
            raise ArtifactError(
                f"{where}: field 'normalisation.{key}' must be a list of {n} finite numbers"
                f"{' > 0' if key == 'std' else ''} for kind {kind!r} and input shape {tuple(input_shape)}"
            )
