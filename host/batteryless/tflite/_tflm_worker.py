"""Runs TFLite Micro's Python interpreter in a child process (a too-small arena can crash it).

Usage: python -m batteryless.tflite._tflm_worker MODEL.tflite INPUTS.npy ARENA_BYTES OUTPUTS.npy
Prints one JSON line ``{"ok": bool, "error": str | null}``; the arena usage lines that TFLM's recording
allocator prints follow.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    model_path, inputs_path, arena, outputs_path = argv
    from tflite_micro.python.tflite_micro import runtime

    data = open(model_path, "rb").read()
    x = np.load(inputs_path)
    try:
        interp = runtime.Interpreter.from_bytes(data, arena_size=int(arena))
        outs = []
        for i in range(len(x)):
            interp.set_input(x[i : i + 1], 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0)).reshape(-1))
    except (RuntimeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else "error"
        print(json.dumps({"ok": False, "error": first}), flush=True)
        return 3
    np.save(outputs_path, np.stack(outs) if outs else np.zeros((0, 0), np.int8))
    print(json.dumps({"ok": True, "error": None}), flush=True)
    sys.stdout.flush()
    interp.print_allocations()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
