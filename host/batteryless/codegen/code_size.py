"""Code size of an image before it is built: what the linker's ``--gc-sections`` keeps of the firmware's own
objects (runtime, app, kernels) for the kernel entry points a plan calls, plus a bound of the generated code.

The MSP430 builds compile every function and const object into its own section (``-ffunction-sections
-fdata-sections``) and link with ``--gc-sections``: the linked code region holds exactly the sections
reachable from the kept roots (the reset entry and the vectors) through relocations. ``object_graph`` reads
that graph from the relocatable objects of one build (pyelftools); ``benchmarks/code_size.py`` stores it per
CPU, backend and app in ``batteryless/data/code_size/`` together with the symbols generated code references
besides the plan's kernel calls, and a fitted bound of the generated objects (model.c, model_weights.c,
eve_table.c) per task. ``estimate`` walks the stored graph from the roots plus the kernel entry points named
in a plan's C calls: the firmware part is the linker's own selection (alignment padding bounded), the
generated part a bound; tests/test_memory_plan.py checks the sum against linked ELFs.

A stored graph describes the kernels as they were when it was written: a kernel change that grows the code
moves the estimate away from the linked size, which tests/test_memory_plan.py reports (rerun
``benchmarks/code_size.py``)."""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

# Sections whose bytes the image keeps in the code region (load address there): code, const data, the
# initial values of .data, and the hot code copied to SRAM at start-up (its load image is in the code region)
CODE_PREFIXES = (".text", ".rodata", ".const", ".data", ".bl_ramfunc")
ROOT_SECTIONS = (".vectors", ".text.bl_reset")  # KEEP()s of the MSP430 linker script
IDENT = re.compile(r"\bbl_[A-Za-z0-9_]+\b")
DATA_DIR = ("data", "code_size")


def _code_section(name: str) -> bool:
    return name.startswith(CODE_PREFIXES) or name in ROOT_SECTIONS


def object_graph(objects: list[Path], root: Path | None = None) -> dict[str, Any]:
    """The allocated sections of relocatable ELF ``objects`` and what each references: ``{"sections":
    {id: [bytes, align, code?, [referenced ids]]}, "symbols": {global symbol: id}}``, an id being
    ``<object path relative to root>:<section name>``."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    sections: dict[str, list] = {}
    symbols: dict[str, str] = {}
    pending: list[tuple[str, list[tuple[str, str | None]]]] = []
    for obj in sorted(objects):
        tag = str(obj.relative_to(root)) if root else obj.name
        with open(obj, "rb") as fh:
            elf = ELFFile(fh)
            names = {i: s.name for i, s in enumerate(elf.iter_sections())}
            for s in elf.iter_sections():
                if s["sh_flags"] & 2 and s["sh_type"] != "SHT_NOBITS" or s.name.startswith(".bss"):
                    sections[f"{tag}:{s.name}"] = [
                        int(s["sh_size"]),
                        int(s["sh_addralign"] or 1),
                        _code_section(s.name),
                        [],
                    ]
            symtab = elf.get_section_by_name(".symtab")
            syms = list(symtab.iter_symbols()) if isinstance(symtab, SymbolTableSection) else []
            for sym in syms:
                shndx = sym["st_shndx"]
                if isinstance(shndx, int) and sym["st_info"]["bind"] != "STB_LOCAL" and sym.name:
                    symbols[sym.name] = f"{tag}:{names[shndx]}"
            for s in elf.iter_sections():
                if not isinstance(s, RelocationSection):
                    continue
                target = f"{tag}:{names[s['sh_info']]}"
                if target not in sections:
                    continue
                refs = []
                for rel in s.iter_relocations():
                    sym = syms[rel["r_info_sym"]]
                    shndx = sym["st_shndx"]
                    if isinstance(shndx, int) and shndx != 0:
                        refs.append((f"{tag}:{names[shndx]}", None))
                    elif sym.name:
                        refs.append(("", sym.name))
                pending.append((target, refs))
    for target, refs in pending:
        out = sections[target][3]
        for sec, name in refs:
            ref = sec or symbols.get(name or "")
            if ref and ref in sections and ref not in out and ref != target:
                out.append(ref)
    return {"sections": sections, "symbols": symbols}


def reachable(graph: dict[str, Any], roots: set[str]) -> set[str]:
    """Section ids the linker keeps for root symbols / section ids ``roots`` (plus the KEEP()s)."""
    secs, syms = graph["sections"], graph["symbols"]
    todo = [r for r in roots if r in secs] + [syms[r] for r in roots if r in syms]
    todo += [s for s in secs if s.split(":", 1)[1] in ROOT_SECTIONS]
    seen: set[str] = set()
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        todo.extend(secs[s][3])
    return seen


def code_bytes(graph: dict[str, Any], kept: set[str]) -> int:
    """Bytes the kept sections take in the code region, each rounded up to its alignment (the linker pads
    a section's start to its alignment; on the MSP430 every code section is 2-byte aligned)."""
    total = 0
    for s in kept:
        size, align, code, _ = graph["sections"][s]
        if code and not s.endswith(":.vectors"):  # the vectors have their own region
            total += size + (-size % align)
    return total


def load(board: str, backend: str, app: str) -> dict[str, Any] | None:
    """The stored graph and generated-code bound for (board, backend, app), or None when none is stored."""
    p = resources.files("batteryless").joinpath(*DATA_DIR, f"{board}-{backend}-{app}.json")
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def plan_identifiers(plan) -> set[str]:
    """Every ``bl_*`` identifier in the C emit writes for the plan's tasks (each task's expression as the
    dispatch renders it, per mode for EVE; range entries and the helpers they call; declarations, geometry
    and EVE definitions): the kernel entry points the generated code calls."""
    from batteryless.codegen import tasks as dispatch

    texts: list[str] = [*plan.decls, *plan.geoms, *plan.eve_defs]
    for t in plan.tasks:
        texts.append(dispatch.task_expr(plan, t))
        texts.append(t.chunk[0] if t.chunk else "")
    joined = "\n".join(texts)
    texts += [body for name, body in dispatch._HELPERS.items() if name in joined]
    return {m for text in texts for m in IDENT.findall(text)}


# bytes per element of the generated const arrays' C types (MSP430: 16-bit pointers and ints); a struct's
# fields are 16-bit values or pointers, so a struct initialiser takes 2 bytes per value
CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4}
CONST_DEF = re.compile(r"const\s+(\w+)\s+\*?\s*(\w+)\s*(?:\[(\d+)\])?\s*=\s*\{(.*?)\};", re.S)
VALUE = re.compile(r"-?\b(?:0x[0-9A-Fa-f]+|\d+)u?\b|\bNULL\b|&?\b[A-Za-z_]\w*\b")
CALL = re.compile(r"\b[A-Za-z_]\w*\(")


def const_bytes(texts: list[str]) -> int:
    """Bytes of the const arrays and structs defined in C ``texts``."""
    total = 0
    for ctype, _name, n, init in CONST_DEF.findall("\n".join(texts)):
        if ctype in CTYPE_BYTES and n:
            total += int(n) * CTYPE_BYTES[ctype]
        else:
            total += 2 * len(VALUE.findall(init))
    return total


def generated_features(plan) -> dict[str, int]:
    """What the generated objects' size goes by: the consts the plan defines (weights, spectra, biases,
    geometry, EVE selections, the step-unit table), and the dispatch's entries, kernel calls and their
    arguments (codegen/tasks.py renders one entry per task or range of steps)."""
    from batteryless.codegen import tasks as dispatch

    exprs = [
        chunk if chunk is not None else dispatch.task_expr(plan, plan.tasks[first])
        for first, _end, chunk in dispatch.entries(plan, plan.ranges)
    ]
    calls = sum(len(CALL.findall(e)) for e in exprs)
    return {
        "consts": const_bytes([*plan.arrays, *plan.geoms, *plan.eve_defs]) + 16 * len(plan.units),
        "entries": len(exprs),
        "calls": calls,
        "args": calls + sum(e.count(",") for e in exprs),
        "branches": sum(e.count("?") for e in exprs),  # EVE: one per mode that makes another call
        "zeros": sum(e.count("bl_eve_zero(") for e in exprs),  # EVE: dropped rows zeroed
        # EVE, merged tasks (plan.merge_tasks): each part's status tested before the next part runs
        "merges": sum(e.count("bl_eve_st =") for e in exprs),
    }


FITTED = ("entries", "calls", "args", "branches", "zeros", "merges")
GENERATED_TERMS = ("base", "per_entry", "per_call", "per_arg", "per_branch", "per_zero", "per_merge")


def generated_bytes(data: dict[str, Any], plan) -> int:
    """The bound of the generated objects' code-region bytes: the plan's consts plus the fitted terms of its
    dispatch (benchmarks/code_size.py: an upper envelope over built images)."""
    g, f = data["generated"], generated_features(plan)
    return math.ceil(
        f["consts"]
        + g["base"]
        + sum(g.get(term, 0.0) * f[k] for k, term in zip(FITTED, GENERATED_TERMS[1:], strict=True))
    )


def estimate(plan, board: str, backend: str, app: str, modes: int = 1) -> dict[str, int] | None:
    """Code-region bytes of the image by part (``firmware``: runtime, app and kernels the linker keeps;
    ``generated``: the model's own objects incl. its weights), or None without a stored graph."""
    data = load(board, backend, app)
    if data is None:
        return None
    # an EVE image compiles the selector and the apps' mode code (model.cmake): its own graph and references
    eve = modes > 1 and "graph_eve" in data
    graph = data["graph_eve"] if eve else data["graph"]
    roots = set(data["generated_refs_eve"] if eve else data["generated_refs"]) | plan_identifiers(plan)
    firmware = code_bytes(graph, reachable(graph, roots))
    return {"firmware": firmware, "generated": generated_bytes(data, plan)}
