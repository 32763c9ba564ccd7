"""The ``.bl`` artifact (DESIGN.md contract 1).

A zip holding ``manifest.json`` (format, version, layer graph, fixed-point formats, EVE modes, normalisation,
metrics, provenance), ``tensors.npz`` (integer tensors; no pickles) and ``integrity.json`` (SHA-256 of both).
Loading checks everything and names the field at fault; writing goes to a temporary file in the same folder
and is renamed into place, so a crash never leaves a half-written artifact under the final name. The file
gets the permissions ``open()`` would give it (umask), or keeps those of the file it replaces. The same
artifact always gives the same bytes: fixed zip timestamps, sorted keys, and no run-specific values in the
manifest (``rad.compress`` reports the time taken and the command line in its report, not in the file).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.errors import ArtifactError
from batteryless.eve.modes import validate_modes
from batteryless.normalisation import normalise, validate_normalisation
from batteryless.paths import replacement_mode

FORMAT = "batteryless-artifact"
# Version history (a newer tool migrates every older version on load; a newer file than VERSION is refused):
#   1: normalisation = {"mean": number, "std": number} (always one scalar pair over the training split)
#   2: normalisation gains "kind" (none | scalar | per-channel | per-feature, lists for the last two) and
#      "source" (train | given); v1 files load as kind "scalar", source "train"
#   3: EVE modes: weight layers may name a "block_order" tensor and each mode may carry per-layer "layers"
#      settings (nested block prefixes, width, requantisation; batteryless.eve.modes); older files have one
#      full mode and need no change
VERSION = 3
WEIGHT_OPS = ("linear", "conv1d", "conv2d")
POOL_OPS = ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d")
ALL_OPS = (*WEIGHT_OPS, *POOL_OPS, "relu", "flatten")
FRAC_RANGE = (-16, 31)


@dataclass
class Artifact:
    layers: list[dict[str, Any]]
    tensors: dict[str, np.ndarray]
    input_shape: tuple[int, ...]
    num_classes: int
    input_frac: int
    normalisation: dict[str, Any]  # see batteryless.normalisation
    model: str = "custom"
    dataset: str = "unknown"
    class_names: list[str] | None = None
    modes: list[dict[str, Any]] = field(
        default_factory=lambda: [{"name": "full", "description": "all blocks"}]
    )
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    # --- views ------------------------------------------------------------------------------------------
    def weight_layers(self) -> list[dict[str, Any]]:
        return [layer for layer in self.layers if layer["op"] in WEIGHT_OPS]

    def layer(self, name: str) -> dict[str, Any]:
        for layer in self.layers:
            if layer["name"] == name:
                return layer
        raise ArtifactError(f"no layer named {name!r}")

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (N, *input_shape) → what the model takes, float32 (the spec quantises the float64
        form of the same transform)."""
        return normalise(self.normalisation, self.input_shape, x).astype(np.float32)

    def to_float_module(self):
        """The float model the integer reference approximates: dense layers, de-quantised weights.

        Takes *normalised* inputs (see :meth:`normalise`)."""
        import torch
        from torch import nn

        from batteryless.spec import expand_circulant_int

        mods: list[nn.Module] = []
        for layer in self.layers:
            op = layer["op"]
            if op in WEIGHT_OPS:
                w = self.tensors[layer["weight"]].astype(np.float64)
                if layer["block"] > 1:
                    rows, cols = _rows_cols(layer)
                    w = expand_circulant_int(w, rows, cols)
                w = w / 2.0 ** layer["weight_frac"]
                b = None
                if layer.get("bias"):
                    b = self.tensors[layer["bias"]] / 2.0 ** (layer["in_frac"] + layer["weight_frac"])
                if op == "linear":
                    m = nn.Linear(layer["in_features"], layer["out_features"], bias=b is not None)
                else:
                    cls = nn.Conv1d if op == "conv1d" else nn.Conv2d
                    m = cls(
                        layer["in_channels"],
                        layer["out_channels"],
                        tuple(layer["kernel_size"]),
                        stride=tuple(layer["stride"]),
                        padding=tuple(layer["padding"]),
                        bias=b is not None,
                    )
                with torch.no_grad():
                    m.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
                    if b is not None:
                        m.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
                mods.append(m)
            elif op == "relu":
                mods.append(nn.ReLU())
            elif op == "flatten":
                mods.append(nn.Flatten())
            else:
                cls = {
                    "maxpool1d": nn.MaxPool1d,
                    "maxpool2d": nn.MaxPool2d,
                    "avgpool1d": nn.AvgPool1d,
                    "avgpool2d": nn.AvgPool2d,
                }[op]
                mods.append(cls(tuple(layer["kernel_size"]), stride=tuple(layer["stride"])))
        return nn.Sequential(*mods).eval()

    # --- sizes ------------------------------------------------------------------------------------------
    def layer_stats(self, layer: dict[str, Any]) -> dict[str, Any]:
        """Parameters, device bytes and MACs of one weight layer, for the chosen path."""
        return layer_stats(layer, self.tensors, self.input_shape, self.layers)


def _rows_cols(layer: dict[str, Any]) -> tuple[int, int]:
    if layer["op"] == "linear":
        return layer["out_features"], layer["in_features"]
    return layer["out_channels"], layer["in_channels"]


def layer_stats(layer, tensors, input_shape, layers, active: np.ndarray | None = None) -> dict[str, Any]:
    """``active`` (bool [p, q]) restricts a layer to the blocks one EVE mode uses (a dense layer: [rows,
    cols], the rows it computes)."""
    shapes = propagate_shapes(layers, tuple(input_shape))
    idx = next(i for i, x in enumerate(layers) if x is layer or x["name"] == layer["name"])
    out_shape = shapes[idx + 1]
    positions = math.prod(out_shape[1:]) if layer["op"] != "linear" else 1
    rows, cols = _rows_cols(layer)
    taps = math.prod(layer.get("kernel_size", [1]))
    k = layer["block"]
    wbytes = 1 if layer["weight_bits"] == 8 else 2
    dense_params = rows * cols * taps
    if k == 1:
        # an EVE mode's ``active`` [rows, cols]: the weights of the rows it computes (width)
        params = dense_params if active is None else int(active.sum()) * taps
        stored = params * wbytes
        macs = params * positions
    else:
        mask = tensors.get(layer.get("block_mask", ""), None)
        p, q = math.ceil(rows / k), math.ceil(cols / k)
        if active is not None:
            kept = int(active.sum())
            # a mode transforms only the input blocks it reads and inverts only the output rows it writes
            p, q = int(active.any(axis=1).sum()), int(active.any(axis=0).sum())
        else:
            kept = int((mask != 0).sum()) if mask is not None else p * q
        params = kept * k * taps
        # the device stores what its path reads: int16 packed spectra (k values) or k time-domain values
        stored = params * (2 if layer.get("path") == "fft" else wbytes)
        if layer.get("path") == "fft":
            f = k // 2 + 1
            in_pos = math.prod(shapes[idx][2:]) if layer["op"] != "linear" else 1
            # complex MACs (4 real) per kept block·bin·tap·position; FFTs counted as k/2·log2k butterflies
            macs = kept * f * 4 * taps * positions
            macs += (q * in_pos + p * positions) * (k // 2) * int(math.log2(k)) * 4
        else:
            macs = kept * k * k * taps * positions
    bias_bytes = rows * 4 if layer.get("bias") else 0
    return {
        "name": layer["name"],
        "op": layer["op"],
        "block": k,
        "path": layer.get("path", "direct"),
        "params": params,
        "dense_params": dense_params,
        "weight_bytes": stored,
        "dense_int16_weight_bytes": dense_params * 2,
        "bias_bytes": bias_bytes,
        "macs": macs,
        "dense_macs": dense_params * positions,
    }


def propagate_shapes(layers: list[dict[str, Any]], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes (with a leading batch 1) before the first layer and after each layer; raises on mismatch."""
    shape = (1, *input_shape)
    out = [shape]
    for layer in layers:
        op, name = layer["op"], layer.get("name", "?")
        where = f"layer {name!r} ({op})"
        if op == "linear":
            if len(shape) != 2 or shape[1] != layer["in_features"]:
                raise ArtifactError(
                    f"{where}: expects {layer['in_features']} features, gets shape {shape[1:]}"
                )
            shape = (1, layer["out_features"])
        elif op in ("conv1d", "conv2d", *POOL_OPS):
            dims = 1 if op.endswith("1d") else 2
            if len(shape) != 2 + dims:
                raise ArtifactError(f"{where}: expects a {dims}-D feature map, gets shape {shape[1:]}")
            ch = shape[1]
            if op.startswith("conv"):
                if ch != layer["in_channels"]:
                    raise ArtifactError(f"{where}: expects {layer['in_channels']} channels, gets {ch}")
                ch = layer["out_channels"]
                pad = layer["padding"]
            else:
                pad = [0] * dims
            spatial = []
            for d in range(dims):
                size = (shape[2 + d] + 2 * pad[d] - layer["kernel_size"][d]) // layer["stride"][d] + 1
                if size < 1:
                    raise ArtifactError(f"{where}: kernel larger than its input {shape[1:]}")
                spatial.append(size)
            shape = (1, ch, *spatial)
        elif op == "flatten":
            shape = (1, math.prod(shape[1:]))
        out.append(shape)
    return out


# --- validation ------------------------------------------------------------------------------------------
def _need(d: dict, key: str, types, where: str):
    if key not in d:
        raise ArtifactError(f"{where}: missing field {key!r}")
    v = d[key]
    if (
        not isinstance(v, types)
        or isinstance(v, bool)
        and bool not in (types if isinstance(types, tuple) else (types,))
    ):
        raise ArtifactError(f"{where}: field {key!r} has the wrong type ({type(v).__name__})")
    return v


def _frac(d: dict, key: str, where: str) -> int:
    v = _need(d, key, int, where)
    if not FRAC_RANGE[0] <= v <= FRAC_RANGE[1]:
        raise ArtifactError(f"{where}: field {key!r} = {v} is outside {FRAC_RANGE}")
    return v


def _tensor(
    tensors: dict, name: str, shape: tuple | None, kind: str, where: str, field_name: str
) -> np.ndarray:
    if name not in tensors:
        raise ArtifactError(
            f"{where}: field {field_name!r} names tensor {name!r}, which is not in tensors.npz"
        )
    t = tensors[name]
    if kind == "int" and not np.issubdtype(t.dtype, np.integer):
        raise ArtifactError(f"{where}: tensor {name!r} must be integer, is {t.dtype}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ArtifactError(f"{where}: tensor {name!r} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t


def validate(art: Artifact) -> None:
    if not isinstance(art.input_shape, tuple) or not all(
        isinstance(s, int) and s > 0 for s in art.input_shape
    ):
        raise ArtifactError(f"manifest: field 'input_shape' must be positive integers, is {art.input_shape}")
    if not isinstance(art.num_classes, int) or art.num_classes < 2:
        raise ArtifactError("manifest: field 'num_classes' must be an integer ≥ 2")
    validate_normalisation(art.normalisation, art.input_shape)
    _frac({"input_frac": art.input_frac}, "input_frac", "manifest")
    names = set()
    for i, layer in enumerate(art.layers):
        if not isinstance(layer, dict):
            raise ArtifactError(f"manifest: layers[{i}] is not an object")
        where = f"manifest: layers[{i}]"
        name = _need(layer, "name", str, where)
        where = f"manifest: layer {name!r}"
        if name in names:
            raise ArtifactError(f"{where}: duplicate layer name")
        names.add(name)
        op = _need(layer, "op", str, where)
        if op not in ALL_OPS:
            raise ArtifactError(f"{where}: unknown op {op!r} (known: {', '.join(ALL_OPS)})")
        if op in POOL_OPS or op.startswith("conv"):
            dims = 1 if op.endswith("1d") else 2
            for key in ("kernel_size", "stride") + (("padding",) if op.startswith("conv") else ()):
                v = _need(layer, key, list, where)
                if len(v) != dims or not all(
                    isinstance(s, int) and s >= (0 if key == "padding" else 1) for s in v
                ):
                    raise ArtifactError(f"{where}: field {key!r} must be {dims} positive integer(s), is {v}")
        if op not in WEIGHT_OPS:
            continue
        k = _need(layer, "block", int, where)
        if k < 1 or k & (k - 1):
            raise ArtifactError(f"{where}: field 'block' = {k} is not a power of two")
        if op == "linear":
            rows, cols = _need(layer, "out_features", int, where), _need(layer, "in_features", int, where)
        else:
            rows, cols = _need(layer, "out_channels", int, where), _need(layer, "in_channels", int, where)
        taps = tuple(layer.get("kernel_size", ()))
        bits = _need(layer, "weight_bits", int, where)
        if bits not in (8, 16):
            raise ArtifactError(f"{where}: field 'weight_bits' must be 8 or 16, is {bits}")
        for key in ("weight_frac", "in_frac", "out_frac"):
            _frac(layer, key, where)
        path = layer.get("path", "direct")
        if path not in ("fft", "direct"):
            raise ArtifactError(f"{where}: field 'path' must be 'fft' or 'direct', is {path!r}")
        wshape = (rows, cols, *taps) if k == 1 else (math.ceil(rows / k), math.ceil(cols / k), k, *taps)
        w = _tensor(art.tensors, _need(layer, "weight", str, where), wshape, "int", where, "weight")
        lim = 1 << (bits - 1)
        if w.size and (w.min() < -lim or w.max() >= lim):
            raise ArtifactError(f"{where}: weight values exceed {bits}-bit range")
        if layer.get("bias"):
            _tensor(art.tensors, layer["bias"], (rows,), "int", where, "bias")
        if layer.get("block_mask"):
            _tensor(art.tensors, layer["block_mask"], wshape[:2], "int", where, "block_mask")
        if k > 1:
            _tensor(art.tensors, _need(layer, "spectra", str, where), wshape, "int", where, "spectra")
            _frac(layer, "spectra_frac", where)
            _frac(layer, "spectrum_frac", where)
            if layer.get("bias_out"):
                _tensor(art.tensors, layer["bias_out"], (rows,), "int", where, "bias_out")
    shapes = propagate_shapes(art.layers, art.input_shape)
    if shapes[-1] != (1, art.num_classes):
        raise ArtifactError(
            f"manifest: the last layer outputs {shapes[-1][1:]}, but num_classes is {art.num_classes}"
        )
    validate_modes(art)


# --- file I/O --------------------------------------------------------------------------------------------
def _manifest(art: Artifact) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": art.version,
        "model": art.model,
        "dataset": art.dataset,
        "class_names": art.class_names,
        "input_shape": list(art.input_shape),
        "num_classes": art.num_classes,
        "input_frac": art.input_frac,
        "normalisation": {"kind": "scalar", "source": "train", **art.normalisation},
        "layers": art.layers,
        "modes": art.modes,
        "metrics": art.metrics,
        "provenance": art.provenance,
    }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed member timestamps: same artifact, same bytes


def save_artifact(art: Artifact, path: str | Path) -> Path:
    """Validate, then write atomically (temp file in the same folder + rename)."""
    validate(art)
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ArtifactError(f"cannot write {path}: folder {path.parent} does not exist")
    manifest = json.dumps(_manifest(art), indent=1, sort_keys=True).encode()
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in sorted(art.tensors.items())})
    tensors = buf.getvalue()
    integrity = json.dumps({"manifest.json": _sha(manifest), "tensors.npz": _sha(tensors)}, indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in (
                ("manifest.json", manifest),
                ("tensors.npz", tensors),
                ("integrity.json", integrity),
            ):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        os.chmod(tmp, replacement_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_artifact(path: str | Path) -> Artifact:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for need in ("manifest.json", "tensors.npz", "integrity.json"):
                if need not in names:
                    raise ArtifactError(f"{path}: not a batteryless artifact ({need} is missing)")
            manifest_b = zf.read("manifest.json")
            tensors_b = zf.read("tensors.npz")
            integrity_b = zf.read("integrity.json")
    except zipfile.BadZipFile as err:
        raise ArtifactError(f"{path}: corrupt or truncated artifact (not a readable zip: {err})") from None
    except (zipfile.LargeZipFile, OSError, EOFError) as err:
        raise ArtifactError(f"{path}: corrupt or truncated artifact ({err})") from None
    except Exception as err:  # zlib errors surface as zlib.error
        raise ArtifactError(f"{path}: corrupt artifact ({type(err).__name__}: {err})") from None
    try:
        manifest = json.loads(manifest_b)
    except ValueError as err:
        raise ArtifactError(f"{path}: manifest.json is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: manifest field 'format' is not {FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, int):
        raise ArtifactError(f"{path}: manifest field 'version' is missing or not an integer")
    if version > VERSION:
        raise ArtifactError(
            f"{path}: artifact version {version} is newer than this tool reads ({VERSION}): upgrade"
        )
    if version < 1:
        raise ArtifactError(f"{path}: artifact version {version} is not supported (oldest supported: 1)")
    try:
        integrity = json.loads(integrity_b)
    except ValueError:
        raise ArtifactError(f"{path}: integrity.json is not valid JSON") from None
    for name, data in (("manifest.json", manifest_b), ("tensors.npz", tensors_b)):
        if integrity.get(name) != _sha(data):
            raise ArtifactError(f"{path}: {name} does not match its recorded SHA-256 (tampered or corrupt)")
    try:
        with np.load(io.BytesIO(tensors_b), allow_pickle=False) as npz:
            tensors = {k: npz[k] for k in npz.files}
    except Exception as err:
        raise ArtifactError(f"{path}: tensors.npz is unreadable ({err})") from None
    _migrate(manifest, version)
    try:
        art = Artifact(
            layers=manifest["layers"],
            tensors=tensors,
            input_shape=tuple(manifest["input_shape"]),
            num_classes=manifest["num_classes"],
            input_frac=manifest["input_frac"],
            normalisation=manifest["normalisation"],
            model=manifest.get("model", "custom"),
            dataset=manifest.get("dataset", "unknown"),
            class_names=manifest.get("class_names"),
            modes=manifest.get("modes") or [{"name": "full"}],
            metrics=manifest.get("metrics", {}),
            provenance=manifest.get("provenance", {}),
            version=VERSION,  # migrated in memory: saving writes the current version
        )
    except KeyError as err:
        raise ArtifactError(f"{path}: manifest is missing field {err.args[0]!r}") from None
    except TypeError as err:
        raise ArtifactError(f"{path}: manifest field has the wrong type ({err})") from None
    if not isinstance(art.layers, list):
        raise ArtifactError(f"{path}: manifest field 'layers' must be a list")
    try:
        validate(art)
    except ArtifactError as err:
        raise ArtifactError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{path}: malformed manifest ({type(err).__name__}: {err})") from None
    return art


def _migrate(manifest: dict[str, Any], version: int) -> None:
    """Bring an older manifest to the current version in place (see the version history at the top)."""
    if version < 2:
        norm = manifest.get("normalisation")
        if isinstance(norm, dict):
            norm.setdefault("kind", "scalar")
            norm.setdefault("source", "train")


def clone(art: Artifact) -> Artifact:
    return copy.deepcopy(art)
