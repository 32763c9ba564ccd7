"""Emulator plumbing: the QEMU TCG plugin (deterministic instruction counts, marks, power cuts through
qemu_system_reset_request), mspdebug's simulator (MCLK cycles, marks, resets), the input patching and the
output parsers (property tests)."""

from __future__ import annotations

import shutil
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batteryless.errors import BuildError, EmulationError
from batteryless.firmware import (
    QEMU_RESET_SYMBOL,
    _md_bytes,
    build,
    check_qemu_reset_symbol,
    parse_output,
    patch_input,
    run,
)
from batteryless.firmware.image import INPUT_MAGIC, input_capacity, symbol

pytestmark = pytest.mark.firmware


def _need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def resettest(tmp_path_factory):
    cache = {}

    def get(board):
        if board not in cache:
            cache[board] = build(
                board, backend="ref", app="resettest", out_dir=tmp_path_factory.mktemp(board)
            ).image
        return cache[board]

    return get


def _spins(n: int) -> bytes:
    return struct.pack("<I", n)


# --- QEMU -----------------------------------------------------------------------------------------------


def test_installed_qemu_exports_the_reset_symbol():
    _need("qemu-system-arm")
    path = check_qemu_reset_symbol("qemu-system-arm")
    assert path.is_file()


def test_reset_symbol_check_fails_clearly_on_another_binary():
    true = shutil.which("true")
    with pytest.raises(EmulationError, match=f"does not export {QEMU_RESET_SYMBOL}.*QEMU 7.2"):
        check_qemu_reset_symbol(true)


def test_qemu_counts_are_identical_across_runs(resettest):
    _need("qemu-system-arm")
    img = resettest("mps2-an386")
    a = run(img, "mps2-an386", inputs=_spins(3000))
    b = run(img, "mps2-an386", inputs=_spins(3000))
    assert a.count == b.count and a.marks == b.marks and a.count > 0
    assert [m[0] for m in a.marks] == [1, 2]  # ids travel through the mark table
    assert a.exit_code == 1 and "boot 1 ram 1" in a.output


def test_qemu_mark_delta_grows_with_the_loop(resettest):
    """Between mark 1 and mark 2 the firmware spins; the plugin's count there must grow linearly."""
    _need("qemu-system-arm")
    img = resettest("mps2-an386")
    deltas = []
    for spins in (1000, 2000, 4000):
        res = run(img, "mps2-an386", inputs=_spins(spins))
        assert len(res.marks) == 2
        deltas.append(res.marks[1][1] - res.marks[0][1])
    per_iter = (deltas[2] - deltas[1]) / 2000
    assert per_iter == (deltas[1] - deltas[0]) / 1000  # exactly linear: a deterministic count
    assert 2 <= per_iter <= 10  # a loop iteration is a handful of Thumb instructions


def test_qemu_power_cut_resets_and_nvm_survives(resettest):
    _need("qemu-system-arm")
    img = resettest("mps2-an386")
    clean = run(img, "mps2-an386", inputs=_spins(5000))
    m1, m2 = clean.marks[0][1], clean.marks[1][1]
    cut = (m1 + m2) // 2  # inside the spin loop, after the NVM counter was incremented
    res = run(img, "mps2-an386", inputs=_spins(5000), cuts=[cut])
    assert res.resets == 1
    assert cut <= res.cut_counts[0] <= cut + 2  # requested before the instruction that reaches the count
    assert res.output.splitlines()[:2] == ["boot 1 ram 1", "boot 2 ram 1"]  # NOLOAD kept, .bss cleared
    assert res.exit_code == 2
    # The second boot repeats the work up to the cut: count = clean + (work done before the cut).
    assert res.count == pytest.approx(clean.count + res.cut_counts[0], abs=4)
    again = run(img, "mps2-an386", inputs=_spins(5000), cuts=[cut])
    assert (again.count, again.cut_counts, again.output) == (res.count, res.cut_counts, res.output)


def test_qemu_several_cuts(resettest):
    _need("qemu-system-arm")
    img = resettest("mps2-an386")
    clean = run(img, "mps2-an386", inputs=_spins(20000))
    m1 = clean.marks[0][1]
    boot = m1  # instructions from reset to the counter increment (startup + init)
    cuts = [m1 + 1000, m1 + 1000 + boot + 1000, m1 + 1000 + 2 * (boot + 1000)]
    res = run(img, "mps2-an386", inputs=_spins(20000), cuts=cuts)
    assert res.resets == 3 and res.exit_code == 4
    assert [ln for ln in res.output.splitlines() if ln.startswith("boot")] == [
        f"boot {i} ram 1" for i in range(1, 5)
    ]


def test_qemu_bad_cut_list_is_refused(resettest):
    _need("qemu-system-arm")
    with pytest.raises(EmulationError, match="strictly ascending"):
        run(resettest("mps2-an386"), "mps2-an386", inputs=_spins(10), cuts=[500, 100])


def test_plugin_rejects_unknown_arguments(tmp_path):
    _need("qemu-system-arm")
    import subprocess

    from batteryless.firmware import qemu_plugin

    proc = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "none",
         "-plugin", f"{qemu_plugin()},bogus=1", "-kernel", "/dev/null"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode != 0 and "unknown argument 'bogus=1'" in proc.stderr


# --- mspdebug -------------------------------------------------------------------------------------------


def test_mspdebug_cycles_deterministic_and_marks_ordered(resettest):
    _need("mspdebug")
    img = resettest("msp430fr5994")
    a = run(img, "msp430fr5994", inputs=_spins(500))
    b = run(img, "msp430fr5994", inputs=_spins(500))
    assert a.unit == "mclk_cycles" and a.count == b.count and a.marks == b.marks
    assert [m[0] for m in a.marks] == [1, 2] and a.marks[0][1] < a.marks[1][1] <= a.count
    longer = run(img, "msp430fr5994", inputs=_spins(1000))
    # Every 500 more spins add exactly the same number of MCLK cycles between the marks.
    d500 = a.marks[1][1] - a.marks[0][1]
    d1000 = longer.marks[1][1] - longer.marks[0][1]
    more = run(img, "msp430fr5994", inputs=_spins(1500))
    d1500 = more.marks[1][1] - more.marks[0][1]
    assert d1500 - d1000 == d1000 - d500 > 0


def test_mspdebug_reset_keeps_fram(resettest):
    _need("mspdebug")
    img = resettest("msp430fr5969")
    clean = run(img, "msp430fr5969", inputs=_spins(2000))
    assert clean.exit_code == 1
    res = run(img, "msp430fr5969", inputs=_spins(2000), cuts=[clean.instructions // 2])
    assert res.exit_code == 2 and res.resets == 1
    assert "boot 2 ram 1" in res.output  # FRAM counter kept; RAM output buffer restarted at boot


# --- input patching -------------------------------------------------------------------------------------


def test_patch_input_writes_header_and_refuses_oversize(resettest, tmp_path):
    _need("qemu-system-arm")
    img = resettest("mps2-an386")
    cap = input_capacity(img)
    assert cap == 4096
    out = patch_input(img, b"\x01\x02\x03", tmp_path / "p.elf")
    sym = symbol(out, "bl_input")
    raw = out.read_bytes()
    # Locate the buffer independently: the magic occurs once in the patched image, followed by the data.
    pos = raw.find(struct.pack("<II", INPUT_MAGIC, 3))
    assert pos >= 0 and raw[pos + 8 : pos + 11] == b"\x01\x02\x03" and sym.size == cap + 8
    with pytest.raises(BuildError, match=f"exceeds the image's input buffer of {cap} bytes"):
        patch_input(img, bytes(cap + 1), tmp_path / "q.elf")
    assert not (tmp_path / "q.elf").exists()


def test_patch_input_refuses_non_elf(tmp_path):
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an elf at all")
    with pytest.raises(BuildError, match="not an ELF firmware image"):
        patch_input(junk, b"", tmp_path / "out.elf")


def test_run_missing_image():
    with pytest.raises(EmulationError, match="firmware image not found"):
        run("/nonexistent/firmware.elf", "host")


# --- parsers (property tests) ---------------------------------------------------------------------------

_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(
    st.dictionaries(_keys, st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20), max_size=8)
)
def test_property_parse_output_round_trips(lines):
    text = "".join(f"{k} {' '.join(map(str, v))}\n" for k, v in lines.items())
    text = "board x\n" + text + "done\n"  # non-numeric lines are skipped
    assert {k: v for k, v in parse_output(text).items() if k != "board"} == lines


@given(st.integers(0, 0xFF00), st.binary(min_size=1, max_size=100))
def test_property_md_dump_parser(address, data):
    """Render bytes the way mspdebug's md prints them (16 per line, aligned) and parse them back."""
    lines = []
    start = address & ~0xF
    for base in range(start, address + len(data), 16):
        cells = []
        for a in range(base, base + 16):
            if address <= a < address + len(data):
                cells.append(f"{data[a - address]:02x}")
        first = max(base, address)
        lines.append(f"    {first:05x}: {' '.join(cells)} |................|")
    assert _md_bytes("\n".join(lines), address, len(data)) == data


# --- host: file-backed NVM and cuts at marks ----------------------------------------------------------


def test_host_cut_at_marks_keeps_nvm_between_boots(resettest):
    img = resettest("host")
    clean = run(img, "host", inputs=_spins(100))
    assert clean.exit_code == 1 and clean.output == "boot 1 ram 1\nfinished\n"
    res = run(img, "host", inputs=_spins(100), cuts=[1, 2, 1])
    boots = [ln for ln in res.output.splitlines() if ln.startswith("boot")]
    assert boots == [f"boot {i} ram 1" for i in range(1, 5)] and res.exit_code == 4 and res.resets == 3
    # A fresh run starts from erased NVM again: the NVM file belongs to one run.
    assert run(img, "host", inputs=_spins(100)).exit_code == 1


def test_host_cut_beyond_the_last_mark_is_reported(resettest):
    with pytest.raises(EmulationError, match="before its bl_mark number 3"):
        run(resettest("host"), "host", inputs=_spins(10), cuts=[3])


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_build_and_run_host(tmp_path, capsys):
    import json

    from batteryless.cli import main

    assert main(["-q", "build", "--board", "host", "--out", str(tmp_path / "b"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["board"] == "host" and rep["app"] == "selftest" and rep["regions"][0]["text"] > 0
    assert main(["-q", "run", str(tmp_path / "b"), "--board", "host", "--int16", "3,-4,5"]) == 0
    out = capsys.readouterr().out
    assert "sum 4" in out and "dot " + str(3 * 5 + (-4) * (-4) + 5 * 3) in out
    # No input: the selftest exits 3, the verb reports failure (1) unless --any-exit.
    assert main(["-q", "run", str(tmp_path / "b"), "--board", "host"]) == 1
    assert main(["-q", "run", str(tmp_path / "b"), "--board", "host", "--any-exit"]) == 0


def test_cli_errors_are_one_line_with_exit_codes(tmp_path, capsys):
    from batteryless.cli import main

    assert main(["build", "--board", "no-such-board"]) == 7
    assert "unknown board 'no-such-board'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.elf"), "--board", "host"]) == 12
    assert "firmware image not found" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--board", "host", "--int16", "1,99999"]) == 2
    assert "[-32768, 32767]" in capsys.readouterr().err


@pytest.mark.parametrize(("board", "tool"), [("msp430fr5994", "mspdebug"), ("mps2-an386", "qemu-system-arm")])
def test_many_marks_are_all_recorded_with_ids(tmp_path, board, tool):
    _need(tool)
    app = tmp_path / "marks"
    app.mkdir()
    (app / "main.c").write_text(
        '#include "bl_platform.h"\n'
        "int bl_app_main(void) { unsigned i; for (i = 0; i < 300u; i++) { bl_mark(i); } return 0; }\n"
    )
    img = build(board, backend="ref", app=str(app), out_dir=tmp_path / "b").image
    res = run(img, board)
    assert res.exit_code == 0 and len(res.marks) == 300
    ids = [m[0] for m in res.marks]
    # MSP430 marks carry the full 16-bit id; QEMU's come from a 256-entry table (id % 256).
    assert ids == ([i for i in range(300)] if tool == "mspdebug" else [i % 256 for i in range(300)])
    steps = {b[1] - a[1] for a, b in zip(res.marks, res.marks[1:], strict=False)}
    assert len(steps) == 1  # the same loop body between every pair of marks
