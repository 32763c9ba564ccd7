"""Reader (and writer, for tests and tools) of the IDX format used by MNIST.

Layout: two zero bytes, a type code, the number of dimensions; then one big-endian uint32 per dimension;
then the data, big-endian, row-major. A file may be gzip-compressed (name ending in ``.gz``).
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from batteryless.errors import DatasetError
from batteryless.paths import replacement_mode

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror})") from None
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"{path}: not a valid gzip file ({err}); re-download or gunzip it") from None
    return raw


def parse_idx(raw: bytes, where: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array (native byte order). ``where`` names the source in errors."""
    if len(raw) < 4:
        raise DatasetError(f"{where}: too short for an IDX header ({len(raw)} bytes, need at least 4)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in IDX_TYPES:
        raise DatasetError(
            f"{where}: bad IDX magic number 0x{int.from_bytes(raw[:4], 'big'):08X} "
            "(expected 0x0000TTDD with type TT in 08,09,0B,0C,0D,0E); is this an IDX file?"
        )
    if ndim == 0:
        raise DatasetError(f"{where}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(
            f"{where}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have < expected:
        raise DatasetError(
            f"{where}: truncated: dimensions {list(dims)} need {expected} data bytes but the file has {have}"
        )
    if have > expected:
        raise DatasetError(
            f"{where}: {have - expected} unexpected bytes after the data of dimensions {list(dims)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header, count=expected // dtype.itemsize)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for ``array`` (dtype must be one of the IDX types)."""
    arr = np.asarray(array)
    match = [
        (c, dt)
        for c, dt in IDX_TYPES.items()
        if (dt.kind, dt.itemsize) == (arr.dtype.kind, arr.dtype.itemsize)
    ]
    if not match:
        raise DatasetError(f"IDX cannot store dtype {arr.dtype}")
    code, dt = match[0]
    if arr.ndim == 0 or arr.ndim > 255:
        raise DatasetError(f"IDX needs 1..255 dimensions, got {arr.ndim}")
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dt).tobytes()


def write_idx(array: np.ndarray, path: str | Path) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in .gz), atomically."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, replacement_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
