"""Import TensorFlow quietly (no banner, no GPU probing) and once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from batteryless.errors import ExportError

_TF: Any = None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ start-up lines (CUDA stub, absl) written straight to file descriptor 2."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
    finally:
        os.close(fd)


def tf() -> Any:
    """The ``tensorflow`` module, imported with its logging silenced and GPUs hidden."""
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
        try:
            with _quiet_stderr():
                import tensorflow
        except ImportError as err:
            raise ExportError(
                f"TensorFlow is not installed ({err}); install the extra: pip install 'batteryless[tflite]'"
            ) from None
        tensorflow.get_logger().setLevel("ERROR")
        tensorflow.autograph.set_verbosity(0)
        _TF = tensorflow
    return _TF
