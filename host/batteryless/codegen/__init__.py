"""ACE code generation: artifact + board → deterministic C sources and ``schedule.json``.

The generated model is a list of atomic *tasks* (DESIGN.md contract 5): each task is one kernel call on one
unit of work (an output block, a row range, the input FFTs of one block, …) that reads one activation buffer
and writes another (ReLU works in place, which is idempotent), so a checkpointing runtime can commit after any
task and re-execute the next one. ``bl_model_task(t)`` runs task t; ``bl_model_run`` runs them all.

Files written to ``out_dir``: ``model.h``, ``model.c`` (buffers and the task switch), ``model_weights.c``
(const weights, spectra, biases, twiddles — in the board's non-volatile code region), ``model_input.h``
(raw input → int16 as the numeric spec quantises it, codegen/model_input.py), ``schedule.json``.
Every file starts with a banner naming the tool version and inputs; same inputs → same bytes.

The stages live in their own modules: ``plan`` (tasks and arrays), ``memory`` (fits the board?), ``emit``
(C text), ``schedule`` (schedule.json), ``generate`` (the ``codegen`` entry point); ``tasks`` (the dispatch),
``granularity`` (step sizes), ``modes`` (EVE), ``fusion``, ``costs``, ``measure``, ``model_input``.
"""

from batteryless.codegen.generate import CodegenResult, codegen
from batteryless.codegen.plan import choose_path

__all__ = ["CodegenResult", "choose_path", "codegen"]
