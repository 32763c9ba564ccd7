"""Modes over one weight store: what the artifact's ``modes`` list means, checked, and viewed per mode.

Artifact format version 3. Each circulant layer that shrinks in some mode names a ``block_order`` tensor: a
permutation of its p·q block indices (block (i, j) is ``i·q + j``), most important first. A mode lists, per
layer, how many blocks of that order it uses (``blocks``: the prefix length) and optionally how many output
block rows it keeps (``out_blocks``: width; rows from ``out_blocks·k`` on are 0 in that mode). A dense
(block 1) layer takes ``out_blocks`` too — its blocks are single rows, so it is the number of output rows
(channels) the mode computes, the first ones; a dense layer has no ``blocks``. Because every
mode takes a prefix of the same order, smaller modes use a subset of a larger mode's blocks: the weights are
stored once and a mode is an index list, not a copy. A mode may also carry small per-layer requantisation
overrides (``in_frac``, ``out_frac``, ``spectrum_frac``, and ``bias`` / ``bias_out`` tensors).

A layer a mode does not name runs in full. An artifact without per-layer mode data (every version-1 file)
therefore has exactly one mode, the full model. Mode 0 is the largest; modes are ordered largest first and
must be nested (each layer's ``blocks`` and ``out_blocks`` never grow from one mode to the next).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from batteryless.errors import ArtifactError

MAX_MODES = 8
MODE_LAYER_KEYS = ("blocks", "out_blocks", "in_frac", "out_frac", "spectrum_frac", "bias", "bias_out")
FRAC_RANGE = (-16, 31)  # same range as artifact.FRAC_RANGE (kept here to avoid an import cycle)


def block_grid(layer: dict[str, Any]) -> tuple[int, int]:
    """(p, q): output and input block counts of a circulant layer."""
    k = layer["block"]
    if layer["op"] == "linear":
        rows, cols = layer["out_features"], layer["in_features"]
    else:
        rows, cols = layer["out_channels"], layer["in_channels"]
    return math.ceil(rows / k), math.ceil(cols / k)


def mode_index(art, mode: int | str) -> int:
    """A mode given by index or name → its index; a clear error if there is no such mode."""
    names = [m["name"] for m in art.modes]
    if isinstance(mode, str) and not isinstance(mode, bool):
        if mode in names:
            return names.index(mode)
        if mode.isdigit():
            mode = int(mode)
        else:
            raise ArtifactError(f"no mode named {mode!r} (modes: {', '.join(names)})")
    if not isinstance(mode, int | np.integer) or not 0 <= int(mode) < len(names):
        raise ArtifactError(f"no mode {mode!r}: the artifact has {len(names)} mode(s), 0 … {len(names) - 1}")
    return int(mode)


def mode_layer(art, mode: int, name: str) -> dict[str, Any]:
    return (art.modes[mode].get("layers") or {}).get(name, {})


def active_blocks(art, layer: dict[str, Any], mode: int) -> np.ndarray | None:
    """Boolean [p, q] mask of the blocks ``layer`` uses in ``mode``.

    Active = among the first ``blocks`` entries of ``block_order``, in a kept output row (``out_blocks``), and
    not pruned by the layer's ``block_mask``. A dense layer: None when the mode runs it whole, else its
    [rows, cols] mask of the kept rows (``out_blocks`` rows, every column)."""
    if layer["block"] == 1:
        ml = mode_layer(art, mode, layer["name"])
        if "out_blocks" not in ml:
            return None
        mask = np.zeros(block_grid(layer), dtype=bool)
        mask[: ml["out_blocks"], :] = True
        return mask
    p, q = block_grid(layer)
    mask = np.ones((p, q), dtype=bool)
    if layer.get("block_mask"):
        mask &= np.asarray(art.tensors[layer["block_mask"]]) != 0
    ml = mode_layer(art, mode, layer["name"])
    if "blocks" in ml:
        order = np.asarray(art.tensors[layer["block_order"]]).astype(np.int64)
        keep = np.zeros(p * q, dtype=bool)
        keep[order[: ml["blocks"]]] = True
        mask &= keep.reshape(p, q)
    if "out_blocks" in ml:
        mask[ml["out_blocks"] :, :] = False
    return mask


def out_rows(art, layer: dict[str, Any], mode: int) -> int | None:
    """Output rows kept in ``mode`` (None: all). Rows from here on are 0."""
    ml = mode_layer(art, mode, layer["name"])
    if "out_blocks" not in ml:
        return None
    return ml["out_blocks"] * layer["block"]


def effective_layer(art, layer: dict[str, Any], mode: int) -> dict[str, Any]:
    """The layer's manifest entry with ``mode``'s requantisation overrides applied."""
    ml = mode_layer(art, mode, layer.get("name", ""))
    over = {key: ml[key] for key in ("in_frac", "out_frac", "spectrum_frac", "bias", "bias_out") if key in ml}
    return {**layer, **over} if over else layer


def has_modes(art) -> bool:
    return len(art.modes) > 1 or any(m.get("layers") for m in art.modes)


# --- validation ------------------------------------------------------------------------------------------
def _int(v, where: str, key: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ArtifactError(f"{where}: field {key!r} must be an integer in [{lo}, {hi}], is {v!r}")
    return v


def validate_modes(art) -> None:
    """Check the ``modes`` list against the layers and tensors; every error names the field at fault."""
    modes = art.modes
    if not isinstance(modes, list) or not modes:
        raise ArtifactError("manifest: field 'modes' must be a non-empty list of objects with a 'name'")
    if len(modes) > MAX_MODES:
        raise ArtifactError(
            f"manifest: field 'modes' has {len(modes)} entries; at most {MAX_MODES} are supported"
        )
    layers = {layer["name"]: layer for layer in art.layers}
    names: set[str] = set()
    for mi, m in enumerate(modes):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"]:
            raise ArtifactError("manifest: field 'modes' must be a non-empty list of objects with a 'name'")
        where = f"manifest: modes[{mi}] ({m['name']!r})"
        if m["name"] in names:
            raise ArtifactError(f"{where}: duplicate mode name")
        names.add(m["name"])
        if "margin" in m and (
            not isinstance(m["margin"], int | float)
            or isinstance(m["margin"], bool)
            or not 0 < m["margin"] <= 10
        ):
            raise ArtifactError(f"{where}: field 'margin' must be a number in (0, 10], is {m['margin']!r}")
        ml_all = m.get("layers", {})
        if not isinstance(ml_all, dict):
            raise ArtifactError(f"{where}: field 'layers' must be an object (layer name → settings)")
        for lname, ml in ml_all.items():
            lw = f"{where}: layers.{lname}"
            if lname not in layers:
                raise ArtifactError(f"{lw}: no weight layer named {lname!r}")
            layer = layers[lname]
            if layer["op"] not in ("linear", "conv1d", "conv2d"):
                raise ArtifactError(f"{lw}: layer {lname!r} ({layer['op']}) has no weights to select")
            if not isinstance(ml, dict):
                raise ArtifactError(f"{lw}: must be an object")
            unknown = set(ml) - set(MODE_LAYER_KEYS)
            if unknown:
                raise ArtifactError(
                    f"{lw}: unknown field(s) {', '.join(sorted(unknown))} "
                    f"(known: {', '.join(MODE_LAYER_KEYS)})"
                )
            if "blocks" in ml and layer["block"] == 1:
                raise ArtifactError(f"{lw}: field 'blocks' needs a circulant layer (block > 1)")
            p, q = block_grid(layer)  # a dense layer: (rows, cols), out_blocks counts rows
            if "blocks" in ml:
                _int(ml["blocks"], lw, "blocks", 1, p * q)
                if not layer.get("block_order"):
                    raise ArtifactError(
                        f"manifest: layer {lname!r}: field 'block_order' is missing "
                        f"(modes[{mi}] selects blocks)"
                    )
            if "out_blocks" in ml:
                _int(ml["out_blocks"], lw, "out_blocks", 1, p)
                if layer is art.weight_layers()[-1]:
                    raise ArtifactError(
                        f"{lw}: field 'out_blocks' cannot narrow the last layer (the classes)"
                    )
            for key in ("in_frac", "out_frac", "spectrum_frac"):
                if key in ml:
                    _int(ml[key], lw, key, *FRAC_RANGE)
            rows = layer["out_features"] if layer["op"] == "linear" else layer["out_channels"]
            for key in ("bias", "bias_out"):
                if key in ml:
                    t = ml[key]
                    if not isinstance(t, str) or t not in art.tensors:
                        raise ArtifactError(
                            f"{lw}: field {key!r} names tensor {t!r}, which is not in tensors.npz"
                        )
                    arr = art.tensors[t]
                    if not np.issubdtype(arr.dtype, np.integer) or arr.shape != (rows,):
                        raise ArtifactError(f"{lw}: tensor {t!r} must be integer of shape ({rows},)")
                    if not layer.get(key):
                        raise ArtifactError(f"{lw}: field {key!r} overrides a {key} the layer does not have")
    for layer in art.weight_layers():
        if not layer.get("block_order"):
            continue
        where = f"manifest: layer {layer['name']!r}"
        if layer["block"] == 1:
            raise ArtifactError(f"{where}: field 'block_order' needs a circulant layer (block > 1)")
        p, q = block_grid(layer)
        t = layer["block_order"]
        if not isinstance(t, str) or t not in art.tensors:
            raise ArtifactError(
                f"{where}: field 'block_order' names tensor {t!r}, which is not in tensors.npz"
            )
        order = art.tensors[t]
        if (
            not np.issubdtype(order.dtype, np.integer)
            or order.shape != (p * q,)
            or not np.array_equal(np.sort(order.astype(np.int64)), np.arange(p * q))
        ):
            raise ArtifactError(
                f"{where}: tensor {t!r} (block_order) must be a permutation of 0 … {p * q - 1}"
            )
    # nesting: a smaller mode never uses a block or row the previous (larger) mode does not
    for mi in range(1, len(modes)):
        for layer in art.weight_layers():
            for key in ("blocks", "out_blocks") if layer["block"] > 1 else ("out_blocks",):
                p, q = block_grid(layer)
                full = p * q if key == "blocks" else p
                prev = mode_layer(art, mi - 1, layer["name"]).get(key, full)
                cur = mode_layer(art, mi, layer["name"]).get(key, full)
                if cur > prev:
                    raise ArtifactError(
                        f"manifest: modes[{mi}] ({modes[mi]['name']!r}): "
                        f"layers.{layer['name']}.{key} = {cur} "
                        f"exceeds the larger mode {mi - 1}'s {prev} (modes must be nested, largest first)"
                    )
    # fraction chain: where a mode overrides formats, each weight layer reads what the previous one wrote
    for mi, m in enumerate(modes):
        if not any(k in ml for ml in (m.get("layers") or {}).values() for k in ("in_frac", "out_frac")):
            continue
        frac = art.input_frac
        for layer in art.weight_layers():
            eff = effective_layer(art, layer, mi)
            if eff["in_frac"] != frac:
                raise ArtifactError(
                    f"manifest: modes[{mi}] ({m['name']!r}): "
                    f"layers.{layer['name']}.in_frac = {eff['in_frac']} "
                    f"but the previous layer writes {frac} fraction bits"
                )
            frac = eff["out_frac"]


# --- sizes per mode ---------------------------------------------------------------------------------------
def mode_stats(art, mode: int | str = 0) -> dict[str, Any]:
    """MACs and weight bytes one inference in ``mode`` touches, per layer and in total."""
    from batteryless.artifact import layer_stats  # sizes live with the artifact; imported late (no cycle)

    mi = mode_index(art, mode)
    rows = [
        layer_stats(layer, art.tensors, art.input_shape, art.layers, active=active_blocks(art, layer, mi))
        for layer in art.weight_layers()
    ]
    total = {key: sum(r[key] for r in rows) for key in ("params", "weight_bytes", "bias_bytes", "macs")}
    return {"mode": mi, "name": art.modes[mi]["name"], "layers": rows, "total": total}


# --- building modes ---------------------------------------------------------------------------------------
def importance_order(w: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Block indices of a circulant weight [p, q, k, *kernel], largest L2 norm first (ties: lower index).

    Pruned blocks (``mask`` 0) go last: no mode above the pruning level can use them anyway."""
    p, q = w.shape[:2]
    norms = np.sqrt((np.asarray(w, dtype=np.float64).reshape(p * q, -1) ** 2).sum(axis=1))
    if mask is not None:
        norms = np.where(np.asarray(mask).reshape(-1) != 0, norms, -1.0)
    return np.lexsort((np.arange(p * q), -norms)).astype(np.int32)


def feed_matrix(prev_rows: int, prev_k: int, cols: int, k: int, spatial: int = 1) -> np.ndarray:
    """Which output block row of one circulant layer feeds which input block column of the next: bool
    [p_prev, q]. Only channel-preserving layers (ReLU, pooling) lie between; a Flatten between makes input
    feature ``f`` of the next layer channel ``f // spatial`` of the previous layer's output."""
    p_prev, q = math.ceil(prev_rows / prev_k), math.ceil(cols / k)
    feed = np.zeros((p_prev, q), dtype=bool)
    for c in range(prev_rows):
        lo, hi = c * spatial, min((c + 1) * spatial, cols)
        if lo < hi:
            feed[c // prev_k, lo // k : (hi - 1) // k + 1] = True
    return feed


def artifact_feeds(art) -> list[np.ndarray | None]:
    """Per weight layer (in order, dense ones too: block 1): the feed matrix from the weight layer before it
    (:func:`feed_matrix`), or None when there is none or something other than ReLU, pooling and Flatten
    lies between (then every input block column is read in every mode)."""
    from batteryless.artifact import POOL_OPS, propagate_shapes  # late: artifact imports this module

    shapes = propagate_shapes(art.layers, tuple(art.input_shape))
    out: list[np.ndarray | None] = []
    prev, spatial, linked = None, 1, False
    for i, layer in enumerate(art.layers):
        op = layer["op"]
        if op in ("linear", "conv1d", "conv2d"):
            cols = layer["in_features"] if op == "linear" else layer["in_channels"]
            feed = None
            if linked and prev is not None:
                prows = prev["out_features"] if prev["op"] == "linear" else prev["out_channels"]
                feed = feed_matrix(prows, prev["block"], cols, layer["block"], spatial)
            out.append(feed)
            prev, spatial, linked = layer, 1, True
        elif op == "flatten":
            spatial *= math.prod(shapes[i][2:]) if len(shapes[i]) > 2 else 1
        elif op != "relu" and op not in POOL_OPS:
            linked = False
    return out


def _energies(weights: list[np.ndarray], masks: list[np.ndarray | None]) -> list[np.ndarray]:
    """Squared norm of every stored block, [p, q] per layer (pruned blocks 0)."""
    out = []
    for w, m in zip(weights, masks, strict=True):
        e = (np.asarray(w, np.float64).reshape(*w.shape[:2], -1) ** 2).sum(axis=2)
        out.append(e if m is None else np.where(np.asarray(m) != 0, e, 0.0))
    return out


def row_order(
    weights: list[np.ndarray], masks: list[np.ndarray | None], feeds: list[np.ndarray | None]
) -> list[np.ndarray]:
    """Per circulant layer, its output block rows most important first: a row's share of the layer's weight
    energy plus the share of the next circulant layer's energy in the columns it feeds (``feeds[l+1]``).
    Training sorts the rows into this order (``eve.train``), so that a narrow mode is a prefix of rows."""
    energies = _energies(weights, masks)
    out = []
    for li, e in enumerate(energies):
        score = e.sum(axis=1) / max(e.sum(), 1e-30)
        nxt = feeds[li + 1] if li + 1 < len(energies) else None
        if nxt is not None:
            col = energies[li + 1].sum(axis=0) / max(energies[li + 1].sum(), 1e-30)
            score = score + (nxt.astype(np.float64) * col[None, :]).sum(axis=1)
        out.append(np.lexsort((np.arange(len(score)), -score)))
    return out


def nested_orders(
    weights: list[np.ndarray],
    masks: list[np.ndarray | None],
    feeds: list[np.ndarray | None],
    keep: list[list[float]],
    width: list[list[float]],
    dense: list[bool] | None = None,
) -> tuple[list[np.ndarray | None], list[list[int] | None], list[list[int]]]:
    """Block orders, per-mode prefix lengths and per-mode output block rows of a chain of circulant layers.

    ``dense[l]``: layer l is dense (block 1): it has no block order (``None`` in the returned orders and
    counts: it uses every weight of its kept rows); only its width applies.
    ``keep[l][i]``: fraction of layer l's stored blocks mode i may use; ``width[l][i]``: fraction of its
    output block rows mode i computes, the first ones (``out_blocks``; only where the next circulant layer
    is fed by them, ``feeds[l+1]``: elsewhere a row nobody skips reading must be computed). Mode i's
    candidate blocks are its rows × the columns fed by the previous layer's rows in mode i, so a narrow
    mode also skips the next layer's input transforms and blocks. Orders are built smallest mode first
    (each mode's best candidates by weight norm, added to the smaller mode's), so every mode is still a
    prefix of one order: nested, stored once."""
    n_layers = len(weights)
    energies = _energies(weights, masks)
    k = len(keep[0])
    live_rows: list[list[np.ndarray]] = []  # [layer][mode] → bool [p]
    for li, e in enumerate(energies):
        p = e.shape[0]
        narrow = li + 1 < n_layers and feeds[li + 1] is not None
        per_mode = []
        for i in range(k):
            w = width[li][i] if narrow else 1.0
            r = np.zeros(p, dtype=bool)
            r[: max(1, math.ceil(w * p - 1e-9))] = True
            per_mode.append(r)
        live_rows.append(per_mode)
    orders: list[np.ndarray | None] = []
    counts: list[list[int] | None] = []
    for li, e in enumerate(energies):
        if dense and dense[li]:
            orders.append(None)
            counts.append(None)
            continue
        p, q = e.shape
        stored_mask = np.ones((p, q), bool) if masks[li] is None else np.asarray(masks[li]) != 0
        stored = int(stored_mask.sum())
        norm = e.reshape(-1)
        chosen: list[int] = []
        n_mode = []
        prev_n = None
        cands = []
        for i in range(k):
            cols = np.ones(q, bool) if feeds[li] is None else feeds[li][live_rows[li - 1][i]].any(axis=0)
            cand = live_rows[li][i][:, None] & cols[None, :] & stored_mask
            if not cand.any():  # pruning removed every block this mode could read: fall back to any stored
                cand = stored_mask.copy()
            n = min(int(cand.sum()), max(1, int(round(keep[li][i] * stored))))
            n = max(1, n if prev_n is None else min(n, prev_n))
            prev_n = n
            n_mode.append(n)
            cands.append(cand.reshape(-1))
        for i in reversed(range(k)):
            pool = [j for j in np.lexsort((np.arange(p * q), -norm)) if cands[i][j] and j not in chosen]
            chosen += [int(j) for j in pool[: n_mode[i] - len(chosen)]]
        taken = set(chosen)
        ranked = np.where(stored_mask.reshape(-1), norm, -1.0)  # pruned blocks last
        rest = [int(j) for j in np.lexsort((np.arange(p * q), -ranked))]
        orders.append(np.asarray(chosen + [j for j in rest if j not in taken], dtype=np.int32))
        counts.append(n_mode)
    rows = [[int(r.sum()) for r in per_mode] for per_mode in live_rows]
    return orders, counts, rows


def default_keep(modes: int, smallest: float = 0.25) -> list[float]:
    """Block fractions of ``modes`` modes: 1 for the largest, geometric down to ``smallest``."""
    if modes == 1:
        return [1.0]
    return [round(smallest ** (i / (modes - 1)), 4) for i in range(modes)]


def prefix_lengths(stored: int, keep: list[float]) -> list[int]:
    """Blocks each mode uses of a layer storing ``stored`` blocks (one rule for training and the artifact)."""
    return [max(1, int(round(f * stored))) for f in keep]


def set_modes(
    art,
    keep: list[float],
    names: list[str] | None = None,
    orders: dict[str, np.ndarray] | None = None,
    layer_keep: dict[str, list[float]] | None = None,
    layer_width: dict[str, list[float]] | None = None,
    layer_rows: dict[str, list[int]] | None = None,
) -> None:
    """Give ``art`` len(keep) nested modes: mode i keeps ``keep[i]`` of each circulant layer's blocks.

    ``keep`` is non-increasing in (0, 1] (keep[0] is usually 1: the full model). Blocks are taken in
    ``orders[layer]`` if given (the order joint training produced, with ``layer_rows[layer]``, its output
    block rows per mode), else ordered here by :func:`nested_orders` (weight norm; with
    ``layer_width[layer]``, the per-mode fraction of output block rows, a narrow mode computes the first
    rows and reads only the columns the previous layer's rows feed). At least one block per layer stays.
    ``layer_keep[layer]`` overrides ``keep`` for one layer (the search sets it per layer). Validates the
    result."""
    if not 1 <= len(keep) <= MAX_MODES:
        raise ArtifactError(f"a model has 1 … {MAX_MODES} modes, not {len(keep)}")
    if any(not 0 < f <= 1 for f in keep) or any(b > a for a, b in zip(keep, keep[1:], strict=False)):
        raise ArtifactError(f"mode keep fractions must be non-increasing in (0, 1], are {keep}")
    names = names or [f"m{i}" for i in range(len(keep))]
    modes: list[dict[str, Any]] = [
        {"name": n, "keep": float(f), "layers": {}} for n, f in zip(names, keep, strict=True)
    ]
    wl = art.weight_layers()  # dense layers too: only their width (out_blocks = rows) applies
    dense = [layer["block"] == 1 for layer in wl]
    masks = [art.tensors.get(layer.get("block_mask", "")) for layer in wl]
    lkeep = [
        [1.0] * len(keep) if d else (layer_keep or {}).get(layer["name"], keep)
        for layer, d in zip(wl, dense, strict=True)
    ]
    full_rows = [[block_grid(layer)[0]] * len(keep) for layer in wl]
    if orders:
        prefix = [
            None if d else prefix_lengths(_stored(layer, m), lk)
            for layer, m, lk, d in zip(wl, masks, lkeep, dense, strict=True)
        ]
        order_list = [
            None if d else np.asarray(orders[layer["name"]], dtype=np.int32)
            for layer, d in zip(wl, dense, strict=True)
        ]
        rows = [(layer_rows or {}).get(layer["name"], fr) for layer, fr in zip(wl, full_rows, strict=True)]
    else:
        lwidth = [(layer_width or {}).get(layer["name"], [1.0] * len(keep)) for layer in wl]
        feeds = artifact_feeds(art) if layer_width else [None] * len(wl)
        weights = [art.tensors[layer["weight"]] for layer in wl]
        order_list, prefix, rows = nested_orders(weights, masks, feeds, lkeep, lwidth, dense)
    for layer, order, counts, n_rows in zip(wl, order_list, prefix, rows, strict=True):
        p, q = block_grid(layer)
        if order is not None:
            name = f"{layer['name']}.block_order"
            art.tensors[name] = np.asarray(order, dtype=np.int32)
            layer["block_order"] = name
        for mi, (m, r) in enumerate(zip(modes, n_rows, strict=True)):
            n = p * q if counts is None else counts[mi]
            sel = {"blocks": int(n)} if n < p * q else {}
            if r < p:
                sel["out_blocks"] = int(r)
            if sel:
                m["layers"][layer["name"]] = sel
    art.modes = modes
    validate_modes(art)


def add_mode_biases(art, biases: dict[int, dict[str, np.ndarray | None]]) -> None:
    """Store each mode's own float bias of a layer (``biases[mode][layer]``, None: the layer's) as the mode's
    ``bias`` override (and ``bias_out`` where the layer has one, the FFT path's), quantised like the layer's
    own (``rad.quantize.quantize_bias``); validates the result."""
    from batteryless.rad.quantize import quantize_bias  # late: rad imports eve for training

    layers = {lay["name"]: lay for lay in art.weight_layers()}
    for mi, per_layer in biases.items():
        for name, b in per_layer.items():
            layer = layers[name]
            if b is None or not layer.get("bias"):
                continue
            sel = art.modes[mi].setdefault("layers", {}).setdefault(name, {})
            art.tensors[f"{name}.bias.m{mi}"] = quantize_bias(b, layer["in_frac"] + layer["weight_frac"])
            sel["bias"] = f"{name}.bias.m{mi}"
            if layer.get("bias_out"):
                art.tensors[f"{name}.bias_out.m{mi}"] = quantize_bias(b, layer["out_frac"])
                sel["bias_out"] = f"{name}.bias_out.m{mi}"
    validate_modes(art)


def _stored(layer: dict[str, Any], mask: np.ndarray | None) -> int:
    p, q = block_grid(layer)
    return int((mask != 0).sum()) if mask is not None else p * q


def store_summary(art) -> dict[str, Any]:
    """Bytes of the one shared store (every stored block once, biases, the modes' own biases, the block-order
    lists as int16) against K separately stored models (each mode's own blocks and biases)."""
    modes = [mode_stats(art, m)["total"] for m in range(len(art.modes))]
    full = mode_stats(art, 0)["layers"]
    from batteryless.artifact import layer_stats

    stored = sum(
        layer_stats(layer, art.tensors, art.input_shape, art.layers)["weight_bytes"]
        for layer in art.weight_layers()
    )
    orders = sum(
        2 * art.tensors[lay["block_order"]].size for lay in art.weight_layers() if lay.get("block_order")
    )
    bias = sum(r["bias_bytes"] for r in full)
    # a mode's own biases (``bias`` overrides): 4 bytes per row, stored once per mode that has them
    mode_bias = sum(
        4 * art.tensors[sel["bias"]].size
        for m in art.modes
        for sel in (m.get("layers") or {}).values()
        if "bias" in sel
    )
    return {
        "store_bytes": stored + bias + orders + mode_bias,
        "mode_bias_bytes": mode_bias,
        "store_weight_bytes": stored,
        "order_bytes": orders,
        "separate_bytes": sum(t["weight_bytes"] + t["bias_bytes"] for t in modes),
        "largest_mode_bytes": modes[0]["weight_bytes"] + modes[0]["bias_bytes"],
    }


def mode_report(art) -> dict[str, Any]:
    """Per-mode rows (MACs, weight bytes touched, accuracies recorded when compressing), store summary."""
    recorded = {r["mode"]: r for r in (art.metrics.get("modes") or []) if isinstance(r, dict) and "mode" in r}
    rows = []
    for mi, m in enumerate(art.modes):
        t = mode_stats(art, mi)["total"]
        rows.append(
            {
                "mode": mi,
                "name": m["name"],
                "keep": m.get("keep", 1.0),
                # width: output block rows the mode computes, per layer it narrows
                "out_blocks": {
                    name: sel["out_blocks"]
                    for name, sel in (m.get("layers") or {}).items()
                    if "out_blocks" in sel
                },
                "macs": t["macs"],
                "weight_bytes": t["weight_bytes"],
                "bias_bytes": t["bias_bytes"],
                "dense_float_accuracy": art.metrics.get("dense_float_accuracy"),
                "circulant_float_accuracy": recorded.get(mi, {}).get("circulant_float_accuracy"),
                "reference_accuracy": recorded.get(mi, {}).get("reference_accuracy"),
            }
        )
    return {"modes": rows, **store_summary(art)}
