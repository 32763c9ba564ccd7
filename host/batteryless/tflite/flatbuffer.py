"""A small, bounds-checked reader for the TFLite flatbuffer (schema v3, file identifier ``TFL3``).

Only what the exporter and importer need is decoded: operator codes, the first subgraph's tensors
(shape, type, buffer, quantisation) and operators (inputs, outputs, builtin options), and the buffers.
Every offset is checked against the file size, so a truncated or corrupt file raises ExportError with
what was being read instead of crashing or reading garbage. Operator and type names come from the schema
module that ai-edge-litert ships (``schema_py_generated``); the field layout below follows schema.fbs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.errors import ExportError

FILE_IDENTIFIER = b"TFL3"
MAX_ELEMENTS = 1 << 28  # a vector longer than this is corrupt, whatever the file size says

# TensorType → numpy dtype (schema.fbs enum values)
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),  # FLOAT32
    1: np.dtype("<f2"),  # FLOAT16
    2: np.dtype("<i4"),  # INT32
    3: np.dtype("u1"),  # UINT8
    4: np.dtype("<i8"),  # INT64
    6: np.dtype("?"),  # BOOL
    7: np.dtype("<i2"),  # INT16
    9: np.dtype("i1"),  # INT8
    10: np.dtype("<f8"),  # FLOAT64
}
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@cache
def builtin_names() -> dict[int, str]:
    """BuiltinOperator code → name, from the schema module of ai-edge-litert."""
    try:
        from ai_edge_litert.schema_py_generated import BuiltinOperator
    except ImportError:  # pragma: no cover - the tflite extra installs it
        return {}
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


@cache
def type_names() -> dict[int, str]:
    try:
        from ai_edge_litert.schema_py_generated import TensorType
    except ImportError:  # pragma: no cover
        return {}
    return {v: k for k, v in vars(TensorType).items() if not k.startswith("_") and isinstance(v, int)}


def op_name(code: int) -> str:
    return builtin_names().get(code, f"BUILTIN_{code}")


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data = memoryview(data)
        self.size = len(data)
        self.where = where

    def fail(self, what: str) -> ExportError:
        return ExportError(f"{self.where}: corrupt or truncated TFLite file ({what}); re-export the model")

    def unpack(self, fmt: str, pos: int, what: str) -> Any:
        n = struct.calcsize(fmt)
        if pos < 0 or pos + n > self.size:
            raise self.fail(f"{what} at byte {pos} lies outside the {self.size}-byte file")
        return struct.unpack_from(fmt, self.data, pos)[0]


class _Table:
    def __init__(self, r: _Reader, pos: int, what: str) -> None:
        self.r, self.pos, self.what = r, pos, what
        vt = pos - r.unpack("<i", pos, f"{what} vtable offset")
        self.vt = vt
        self.vt_len = r.unpack("<H", vt, f"{what} vtable")
        if self.vt_len < 4 or self.vt_len % 2 or vt + self.vt_len > r.size:
            raise r.fail(f"{what} has a bad vtable")

    def _field(self, idx: int) -> int | None:
        off = 4 + 2 * idx
        if off + 2 > self.vt_len:
            return None
        rel = self.r.unpack("<H", self.vt + off, f"{self.what} field {idx}")
        return self.pos + rel if rel else None

    def scalar(self, idx: int, fmt: str, default: Any) -> Any:
        p = self._field(idx)
        return default if p is None else self.r.unpack(fmt, p, f"{self.what} field {idx}")

    def _indirect(self, idx: int) -> int | None:
        p = self._field(idx)
        if p is None:
            return None
        return p + self.r.unpack("<I", p, f"{self.what} field {idx} offset")

    def table(self, idx: int, what: str) -> _Table | None:
        p = self._indirect(idx)
        return None if p is None else _Table(self.r, p, what)

    def _vector(self, idx: int, elem: int, what: str) -> tuple[int, int] | None:
        v = self._indirect(idx)
        if v is None:
            return None
        n = self.r.unpack("<I", v, f"{what} length")
        if n > MAX_ELEMENTS or v + 4 + n * elem > self.r.size:
            raise self.r.fail(f"{what} claims {n} elements beyond the end of the file")
        return v + 4, n

    def array(self, idx: int, dtype: str, what: str) -> np.ndarray | None:
        dt = np.dtype(dtype)
        vec = self._vector(idx, dt.itemsize, what)
        if vec is None:
            return None
        start, n = vec
        return np.frombuffer(self.r.data, dtype=dt, count=n, offset=start).copy()

    def tables(self, idx: int, what: str) -> list[_Table]:
        vec = self._vector(idx, 4, what)
        if vec is None:
            return []
        start, n = vec
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(_Table(self.r, p + self.r.unpack("<I", p, f"{what}[{i}]"), f"{what}[{i}]"))
        return out

    def string(self, idx: int, what: str) -> str | None:
        vec = self._vector(idx, 1, what)
        if vec is None:
            return None
        start, n = vec
        return bytes(self.r.data[start : start + n]).decode("utf-8", errors="replace")


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0

    @property
    def type_name(self) -> str:
        return type_names().get(self.type, f"TYPE_{self.type}")

    @property
    def dtype(self) -> np.dtype:
        try:
            return DTYPES[self.type]
        except KeyError:
            raise ExportError(
                f"tensor {self.name!r}: element type {self.type_name} is not supported"
            ) from None


@dataclass
class Operator:
    index: int
    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return op_name(self.code)


@dataclass
class Graph:
    version: int
    description: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    buffers: list[bytes]
    subgraphs: int

    def op_names(self) -> list[str]:
        """Distinct operator names in first-use order (the resolver list TFLite Micro needs)."""
        seen: dict[str, None] = {}
        for op in self.operators:
            seen.setdefault(op.name, None)
        return list(seen)

    def constant(self, index: int) -> np.ndarray | None:
        """The data of a constant tensor (its buffer is non-empty), shaped; None for activations."""
        t = self.tensors[index]
        raw = self.buffers[t.buffer] if 0 <= t.buffer < len(self.buffers) else b""
        if not raw:
            return None
        dt = t.dtype
        count = int(np.prod(t.shape)) if t.shape else 1
        if count * dt.itemsize != len(raw):
            raise ExportError(
                f"tensor {t.name!r}: buffer holds {len(raw)} bytes, shape {t.shape} of {t.type_name} needs "
                f"{count * dt.itemsize}; the file is corrupt"
            )
        return np.frombuffer(raw, dtype=dt).reshape(t.shape).copy()


def _options(code: int, tab: _Table | None) -> dict[str, Any]:
    name = op_name(code)
    if tab is None:
        return {}
    if name == "CONV_2D":
        return {
            "padding": PADDING.get(tab.scalar(0, "<b", 0), "?"),
            "stride_w": tab.scalar(1, "<i", 0),
            "stride_h": tab.scalar(2, "<i", 0),
            "activation": ACTIVATION.get(tab.scalar(3, "<b", 0), "?"),
            "dilation_w": tab.scalar(4, "<i", 1),
            "dilation_h": tab.scalar(5, "<i", 1),
        }
    if name == "DEPTHWISE_CONV_2D":
        return {
            "padding": PADDING.get(tab.scalar(0, "<b", 0), "?"),
            "stride_w": tab.scalar(1, "<i", 0),
            "stride_h": tab.scalar(2, "<i", 0),
            "depth_multiplier": tab.scalar(3, "<i", 0),
            "activation": ACTIVATION.get(tab.scalar(4, "<b", 0), "?"),
            "dilation_w": tab.scalar(5, "<i", 1),
            "dilation_h": tab.scalar(6, "<i", 1),
        }
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return {
            "padding": PADDING.get(tab.scalar(0, "<b", 0), "?"),
            "stride_w": tab.scalar(1, "<i", 0),
            "stride_h": tab.scalar(2, "<i", 0),
            "filter_w": tab.scalar(3, "<i", 0),
            "filter_h": tab.scalar(4, "<i", 0),
            "activation": ACTIVATION.get(tab.scalar(5, "<b", 0), "?"),
        }
    if name == "FULLY_CONNECTED":
        return {
            "activation": ACTIVATION.get(tab.scalar(0, "<b", 0), "?"),
            "weights_format": tab.scalar(1, "<b", 0),
            "keep_num_dims": bool(tab.scalar(2, "<B", 0)),
        }
    if name == "SOFTMAX":
        return {"beta": tab.scalar(0, "<f", 0.0)}
    if name == "STRIDED_SLICE":  # folded when it slices a static shape (import_.fold_static_shapes)
        keys = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
        return {key: tab.scalar(i, "<i", 0) for i, key in enumerate(keys)} | {
            "offset": bool(tab.scalar(5, "<B", 0))
        }
    if name == "PACK":
        return {"values_count": tab.scalar(0, "<i", 0), "axis": tab.scalar(1, "<i", 0)}
    if name == "CONCATENATION":
        return {"axis": tab.scalar(0, "<i", 0), "activation": ACTIVATION.get(tab.scalar(1, "<b", 0), "?")}
    if name == "RESHAPE":
        shape = tab.array(0, "<i4", "ReshapeOptions.new_shape")
        return {"new_shape": None if shape is None else tuple(int(s) for s in shape)}
    return {}


def read_graph(data: bytes, where: str = "<bytes>") -> Graph:
    """Decode a .tflite file's bytes. Raises ExportError for anything that is not a sound TFLite model."""
    r = _Reader(bytes(data), where)
    if r.size < 8:
        raise ExportError(f"{where}: {r.size} bytes is too short to be a TFLite model")
    ident = bytes(r.data[4:8])
    if ident != FILE_IDENTIFIER:
        raise ExportError(
            f"{where}: not a TFLite model (file identifier {ident!r}, expected {FILE_IDENTIFIER!r})"
        )
    model = _Table(r, r.unpack("<I", 0, "root offset"), "Model")
    version = model.scalar(0, "<I", 0)
    if version != 3:
        raise ExportError(f"{where}: TFLite schema version {version} is not supported (expected 3)")
    codes = []
    for oc in model.tables(1, "Model.operator_codes"):
        deprecated = oc.scalar(0, "<b", 0)
        builtin = oc.scalar(3, "<i", 0)
        custom = oc.string(1, "OperatorCode.custom_code")
        code = max(int(deprecated), int(builtin))
        codes.append(-1 if custom is not None and code == 32 else code)  # 32 = CUSTOM
    subgraphs = model.tables(2, "Model.subgraphs")
    if not subgraphs:
        raise ExportError(f"{where}: the model has no subgraph")
    buffers = []
    for i, b in enumerate(model.tables(4, "Model.buffers")):
        arr = b.array(0, "u1", f"Model.buffers[{i}].data")
        if arr is None and b.scalar(1, "<Q", 0):
            raise ExportError(
                f"{where}: buffer {i} is stored outside the flatbuffer; such models are not supported"
            )
        buffers.append(b"" if arr is None else arr.tobytes())
    sg = subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tables(0, "SubGraph.tensors")):
        shape = t.array(0, "<i4", f"tensors[{i}].shape")
        q = t.table(4, f"tensors[{i}].quantization")
        scale = zp = None
        qdim = 0
        if q is not None:
            scale = q.array(2, "<f4", f"tensors[{i}].quantization.scale")
            zp = q.array(3, "<i8", f"tensors[{i}].quantization.zero_point")
            qdim = q.scalar(6, "<i", 0)
        tensors.append(
            Tensor(
                index=i,
                name=t.string(3, f"tensors[{i}].name") or f"tensor{i}",
                shape=() if shape is None else tuple(int(s) for s in shape),
                type=t.scalar(1, "<b", 0),
                buffer=t.scalar(2, "<I", 0),
                scale=scale if scale is not None and scale.size else None,
                zero_point=zp if zp is not None and zp.size else None,
                quantized_dimension=qdim,
            )
        )
    ops = []
    for i, o in enumerate(sg.tables(3, "SubGraph.operators")):
        idx = o.scalar(0, "<I", 0)
        if idx >= len(codes):
            raise r.fail(f"operator {i} uses operator code {idx} of {len(codes)}")
        ins = o.array(1, "<i4", f"operators[{i}].inputs")
        outs = o.array(2, "<i4", f"operators[{i}].outputs")
        ins_t = () if ins is None else tuple(int(v) for v in ins)
        outs_t = () if outs is None else tuple(int(v) for v in outs)
        for t in (*ins_t, *outs_t):
            if t >= len(tensors) or t < -1:
                raise r.fail(f"operator {i} refers to tensor {t} of {len(tensors)}")
        options = _options(codes[idx], o.table(4, f"operators[{i}].options"))
        ops.append(Operator(i, codes[idx], ins_t, outs_t, options))
    for t in tensors:
        if t.buffer >= len(buffers):
            raise r.fail(f"tensor {t.name!r} uses buffer {t.buffer} of {len(buffers)}")
    inputs = sg.array(1, "<i4", "SubGraph.inputs")
    outputs = sg.array(2, "<i4", "SubGraph.outputs")
    g_in = () if inputs is None else tuple(int(v) for v in inputs)
    g_out = () if outputs is None else tuple(int(v) for v in outputs)
    for t in (*g_in, *g_out):
        if not 0 <= t < len(tensors):
            raise r.fail(f"subgraph input/output {t} is not one of the {len(tensors)} tensors")
    return Graph(
        version=version,
        description=model.string(3, "Model.description") or "",
        tensors=tensors,
        operators=ops,
        inputs=g_in,
        outputs=g_out,
        buffers=buffers,
        subgraphs=len(subgraphs),
    )


def read_file(path: str | Path) -> Graph:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ExportError(f"cannot read {p}: {err.strerror or err}") from None
    return read_graph(data, str(p))
