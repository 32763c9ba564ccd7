"""Run the shell and Python examples of a Markdown page exactly as written (tests/test_readme*.py).

``fenced_blocks`` finds the fenced code blocks (with their language and line numbers), ``section`` narrows
a page to one heading, ``shell_commands`` splits a shell block into commands (joining ``\\`` continuations,
skipping comments), and ``run_shell`` runs them, in order, in ONE bash process in a folder, so that ``.``,
``cd``, variables and ``&`` background jobs (``kill %1``) behave as they do for a user pasting the block.
Each command's output goes to its own log; on the first failing command the test fails with its page line,
its text, its exit code and the end of its output. Background jobs still running at the end are killed.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # page line number of the first line inside the fence (1-based)
    text: str


@dataclass(frozen=True)
class Command:
    line: int  # page line number where the command starts
    text: str  # as written, continuation lines included (and any trailing comment)

    @property
    def background(self) -> bool:
        """Ends in a lone ``&`` (a background job), comments aside."""
        code = _strip_comment(self.text.splitlines()[-1]).rstrip()
        return code.endswith("&") and not code.endswith("&&")


def section(markdown: str, heading: str) -> tuple[str, int]:
    """The text under ``heading`` (e.g. ``"## Using it"``) up to the next heading of the same or a higher
    level, and the page line number of its first line. Headings inside code fences do not count."""
    lines = markdown.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    start = None
    in_fence = False
    for i, ln in enumerate(lines):
        if _FENCE.match(ln):
            in_fence = not in_fence
        if in_fence:
            continue
        if start is None:
            if ln.strip() == heading.strip():
                start = i + 1
        elif ln.startswith("#"):
            n = len(ln) - len(ln.lstrip("#"))
            if n <= level and ln[n : n + 1] == " ":
                return "\n".join(lines[start:i]), start + 1
    if start is None:
        raise AssertionError(f"no heading {heading!r} in the page")
    return "\n".join(lines[start:]), start + 1


def fenced_blocks(markdown: str, first_line: int = 1) -> list[Block]:
    """Every fenced code block (``` or ~~~), in page order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(2), m.group(3).lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"line {first_line + i}: code fence {fence} is never closed")
        blocks.append(Block(lang, first_line + i + 1, "\n".join(body)))
        i = j + 1
    return blocks


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` that starts a word outside quotes)."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k]
    return line


def shell_commands(block: Block) -> list[Command]:
    """The block's commands: ``\\``-continued lines joined (kept as written), blank and comment-only lines
    dropped, a leading ``$ `` prompt refused (pages show commands without prompts)."""
    out: list[Command] = []
    pending: list[str] = []
    start = 0
    for k, ln in enumerate(block.text.splitlines()):
        if not pending:
            if not ln.strip() or ln.lstrip().startswith("#"):
                continue
            if ln.lstrip().startswith("$ "):
                raise AssertionError(f"line {block.line + k}: drop the '$ ' prompt so the line can be pasted")
            start = block.line + k
        pending.append(ln)
        if _strip_comment(ln).rstrip().endswith("\\"):
            continue
        out.append(Command(start, "\n".join(pending)))
        pending = []
    if pending:
        raise AssertionError(f"line {start}: the block ends inside a '\\' continuation")
    return out


def user_env(extra_path: list[Path] | None = None) -> dict[str, str]:
    """The environment of a user who has not activated the venv: its bin folder is not on PATH (so the
    page's own ``. .venv/bin/activate`` is what makes ``batteryless`` a command)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "COV_"))}
    venv_bin = str(VENV / "bin")
    path = [p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and p != venv_bin]
    env["PATH"] = os.pathsep.join([*(str(p) for p in extra_path or []), *path])
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("COLUMNS", "120")
    return env


def prepare_folder(folder: Path) -> None:
    """A fresh folder where a user who cloned the repo would stand: the venv at ``.venv``."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / ".venv"
    if not link.exists():
        link.symlink_to(VENV)


def _tail(text: str, lines: int = 40) -> str:
    rows = text.rstrip().splitlines()
    return "\n".join((["..."] if len(rows) > lines else []) + rows[-lines:])


def run_shell(
    commands: list[Command], cwd: Path, page: str, timeout: float = 600.0, env: dict[str, str] | None = None
) -> list[str]:
    """Run ``commands`` in one bash process in ``cwd``; return each command's output. Raise AssertionError
    naming the first command that failed (page line, text, exit code, the end of its output)."""
    logs = cwd / ".readme-logs"
    logs.mkdir(exist_ok=True)
    script = [
        # background jobs the page started and did not stop: end them (and wait) when the block is done.
        # SIGTERM first, SIGKILL after 2 s for any still alive: a job forked just before the block ends can
        # outlive the TERM (seen ~1 in 400 runs under load: the last line's `sleep 60 &` survived it and the
        # block hung until the timeout; most likely the signal lands between bash's fork and the exec)
        'trap \'j=$(jobs -p); if [ -n "$j" ]; then kill $j 2>/dev/null;'
        " for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $j 2>/dev/null || break; sleep 0.2; done;"
        " kill -KILL $j 2>/dev/null; fi; wait' EXIT",
    ]
    for i, c in enumerate(commands):
        log = shlex.quote(str(logs / f"{i}.log"))
        status = shlex.quote(str(logs / "failed"))
        # the command as written on its own lines inside { }: a trailing comment cannot swallow the
        # redirection, and `.`/`cd`/variables/`&` act on this shell as they would on the user's
        script += ["{", c.text, f"}} >{log} 2>&1 </dev/null || {{ echo {i} $? >{status}; exit 1; }}"]
    path = logs / "block.sh"
    path.write_text("\n".join(script) + "\n")
    proc = subprocess.Popen(
        ["bash", str(path)], cwd=cwd, env=env or user_env(), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        shell_out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        done = sorted(int(p.stem) for p in logs.glob("*.log"))
        i = done[-1] if done else 0
        c = commands[i]
        out = (logs / f"{i}.log").read_text(errors="replace") if done else ""
        raise AssertionError(
            f"{page}:{c.line}: still running after {timeout:.0f} s:\n{c.text}\n--- output ---\n{_tail(out)}"
        ) from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    outputs = [
        (logs / f"{i}.log").read_text(errors="replace") if (logs / f"{i}.log").exists() else ""
        for i in range(len(commands))
    ]
    failed = logs / "failed"
    if failed.exists():
        i, code = (int(v) for v in failed.read_text().split())
        c = commands[i]
        raise AssertionError(
            f"{page}:{c.line}: exit code {code}:\n{c.text}\n--- output ---\n{_tail(outputs[i])}"
        )
    if proc.returncode != 0:
        raise AssertionError(f"{page}: the shell itself failed (exit {proc.returncode}):\n{_tail(shell_out)}")
    return outputs


def run_python(block: Block, cwd: Path, page: str, timeout: float = 600.0) -> str:
    """Run a Python block as written, as a script in ``cwd`` with the venv's interpreter."""
    script = cwd / f"page_line_{block.line}.py"
    script.write_text(block.text + "\n")
    try:
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), script.name], cwd=cwd, env=user_env(), capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{page}:{block.line}: Python block still running after {timeout:.0f} s"
        ) from exc
    if proc.returncode != 0:
        raise AssertionError(
            f"{page}:{block.line}: Python block failed (exit {proc.returncode}):\n{block.text}\n"
            f"--- output ---\n{_tail(proc.stdout + proc.stderr)}"
        )
    return proc.stdout
