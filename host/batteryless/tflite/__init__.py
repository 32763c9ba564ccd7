"""TFLite / TFLite Micro: export artifacts as int8 .tflite + C array, import .tflite models into torch.

TensorFlow, ai-edge-litert and tflite-micro come with the ``tflite`` extra (``pip install
'batteryless[tflite]'``); they are imported only when a function here needs them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_tflite", "import_tflite"]


def export_tflite(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from batteryless.tflite.export import export_tflite as run

    return run(*args, **kwargs)


def import_tflite(*args: Any, **kwargs: Any) -> Any:
    from batteryless.tflite.import_ import import_tflite as run

    return run(*args, **kwargs)
