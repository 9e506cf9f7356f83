"""Docs as tests: every shell block of README.md and docs/*.md, run as a user runs it.

A *shell block* is a fenced block tagged ``sh``, ``bash`` or ``shell``. Its commands run in
order (README first, then :data:`DOC_ORDER`), in one workspace shared by all of them: a
fresh project folder with the repository's configs, Makefile and ``.venv`` (linked), and
``../shared`` beside it, exactly as in a clone. ``WATTWISE_HOME`` points at the workspace so
that data, MLflow and reports land there, never in the checkout (the code runs from the
checkout: the venv's editable install). Each block runs as one bash
script (an ``export`` holds for the rest of its block), with the text a user copies.

What a command is expected to do is written where the user reads it, in its comment:

- ``[exit N]`` (or ``[exit N|M]``, either): exits with N (default 0; the README's table says
  what each code means);
- ``[serves :PORT]``: runs until Ctrl+C: started in the background, the block goes on once
  PORT accepts connections, and it gets Ctrl+C (SIGINT to its process group) when the block
  ends: it must stop and free PORT.

A block or a line that cannot run here says so in an HTML comment just before the block,
which renders as nothing: ``<!-- docs-test: skip: REASON -->`` (the block) or
``<!-- docs-test: skip line N: REASON -->`` (its N-th command, from 1). The test counts them.

Every command must also print no traceback. ``python -m tests.docs.harness --workspace DIR``
runs the same blocks outside pytest (``--from FILE:LINE`` resumes in a kept workspace).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = {"sh", "bash", "shell"}
# after the README, the docs in the order a user meets them (data, features, models, serving,
# monitoring); a doc not listed here runs after these, alphabetically
DOC_ORDER = (
    "importing.md",
    "features.md",
    "schema.md",
    "training.md",
    "kinds.md",
    "serving.md",
    "disaggregation.md",
    "dr.md",
    "monitoring.md",
)
COMMAND_TIMEOUT_S = 1200
STOPPED = (0, -2, -15, 130, 143)  # how a server that ran until Ctrl+C (or SIGTERM) may end
SERVE_WAIT_S = 240

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_MARK = re.compile(r"<!--\s*docs-test:\s*skip(?:\s+line\s+(\d+))?\s*:\s*(.+?)\s*-->")
_EXIT = re.compile(r"\[exit (\d+(?:\|\d+)*)\b[^\]]*\]")
_SERVES = re.compile(r"\[serves :(\d+)\]")


@dataclass
class Command:
    """One command of a block: its text, where it is, and what it must do."""

    text: str
    line: int  # 1-based line in the markdown file
    expect_exit: tuple[int, ...] = (0,)
    serves: int | None = None  # the port of a command that runs until stopped
    skip: str | None = None


@dataclass
class Block:
    """A fenced shell block of a markdown file."""

    path: Path
    line: int  # line of the opening fence
    commands: list[Command] = field(default_factory=list)
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def doc_files(repo: Path = REPO) -> list[Path]:
    """README.md, then docs/*.md in :data:`DOC_ORDER` (others after, alphabetically)."""
    docs = sorted((repo / "docs").glob("*.md"))
    rank = {name: i for i, name in enumerate(DOC_ORDER)}
    docs.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name))
    return [repo / "README.md", *docs]


def _comment(line: str) -> str:
    """The shell comment of a line: from the first ``#`` outside quotes that starts a word."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i:]
    return ""


def parse_blocks(path: Path) -> list[Block]:
    """The shell blocks of one markdown file, with their commands and marks."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    marks: list[tuple[int | None, str]] = []
    i = 0
    while i < len(lines):
        m = _MARK.search(lines[i])
        if m:
            marks.append((int(m.group(1)) if m.group(1) else None, m.group(2)))
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if not fence:
            if lines[i].strip():
                marks = []  # a mark belongs to the block right after it
            i += 1
            continue
        indent, ticks, lang = fence.groups()
        start = i
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            body.append(
                (i + 1, lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            )
            i += 1
        i += 1
        if lang.lower() not in SHELL_LANGS:
            marks = []
            continue
        block = Block(path, start + 1)
        pending = ""
        first = 0
        for n, text in body:
            if not pending and (not text.strip() or text.lstrip().startswith("#!")):
                continue
            if not pending:
                first = n
            pending += text
            if text.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            cmd = pending.strip()
            pending = ""
            if cmd.startswith("#"):
                continue  # a comment line of the block
            note = _comment(cmd)
            ex = _EXIT.search(note)
            sv = _SERVES.search(note)
            block.commands.append(
                Command(
                    cmd,
                    first,
                    tuple(int(x) for x in ex.group(1).split("|")) if ex else (0,),
                    int(sv.group(1)) if sv else None,
                )
            )
        for which, reason in marks:
            if which is None:
                block.skip = reason
            elif 1 <= which <= len(block.commands):
                block.commands[which - 1].skip = reason
            else:
                raise ValueError(
                    f"{path}:{start + 1}: 'skip line {which}' but the block has "
                    f"{len(block.commands)} commands"
                )
        marks = []
        blocks.append(block)
    return blocks


HANDOVER = "next, from this folder:"  # the demo's last lines (wattwise.app.demo)


def handover_block(after: Block, command: Command, output: str) -> Block | None:
    """The commands a command printed for the user to run next (``make demo`` ends with
    them), as a block run right after it: they must work as printed too."""
    if HANDOVER not in output:
        return None
    block = Block(after.path, command.line)
    for text in output.split(HANDOVER, 1)[1].splitlines():
        if not text.strip():
            continue
        if not text.startswith("  "):
            break
        cmd = text.strip()
        note = _comment(cmd)
        ex, sv = _EXIT.search(note), _SERVES.search(note)
        block.commands.append(
            Command(
                cmd,
                command.line,
                tuple(int(x) for x in ex.group(1).split("|")) if ex else (0,),
                int(sv.group(1)) if sv else None,
            )
        )
    return block


def all_blocks(repo: Path = REPO) -> list[Block]:
    return [b for p in doc_files(repo) for b in parse_blocks(p)]


# ---------------------------------------------------------------------------- workspace


def clone_files(repo: Path) -> list[str]:
    """What a clone of ``repo`` holds: the tracked files and those not yet committed (not the
    ignored ones: no data, no venv, no MLflow runs)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (repo / f).is_file()]


def make_workspace(root: Path, repo: Path = REPO, shared: Path | None = None) -> Path:
    """A project folder as a clone has it, under ``root/project`` with ``root/shared`` beside
    it: a copy of the clone's files (mtimes kept, so that make sees the venv as up to date)
    and a link to the checkout's ``.venv``; nothing in the checkout is written."""
    project = root / "project"
    if not project.exists():
        for rel in clone_files(repo):
            dst = project / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, dst)
        (project / ".venv").symlink_to(repo / ".venv")
    (project / "mlruns").mkdir(parents=True, exist_ok=True)
    shared = shared or (repo.parent / "shared")
    if shared.exists() and not (root / "shared").exists():
        (root / "shared").symlink_to(shared.resolve())
    return project


def workspace_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATTWISE_", "WW_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        WATTWISE_HOME=str(project),
        BENTOML_HOME=str(project.parent / "bentoml"),
        MPLBACKEND="Agg",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


# ---------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What one command did."""

    block: Block
    command: Command
    rc: int | None
    output: str
    seconds: float

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(REPO)}:{self.command.line}"

    @property
    def problem(self) -> str | None:
        """Why the command contradicts its doc, or None."""
        c = self.command
        if self.rc is None:
            return "did not finish"
        if c.serves is not None:
            if self.rc not in STOPPED:
                return f"the server did not run until stopped (rc {self.rc})"
        elif self.rc not in c.expect_exit:
            return f"exit {self.rc}, the doc expects {'|'.join(map(str, c.expect_exit))}"
        if "Traceback (most recent call last)" in self.output and not (
            c.serves is not None and "KeyboardInterrupt" in self.output
        ):  # a server's worker still importing when the user's Ctrl+C arrives: not a bug
            return "printed a traceback"
        return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if not port_free(port):
            return True
        time.sleep(0.5)
    return False


def wait_free(port: int, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _stop(proc: subprocess.Popen[bytes], sig: int | None = None) -> int | None:
    """Signal the command's process group (SIGTERM, or ``sig``: SIGINT is a terminal's
    Ctrl+C); SIGKILL it if it has not stopped in 60 s."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM if sig is None else sig)
    except ProcessLookupError:
        return proc.poll()
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return None


def _terminal_signals() -> None:
    """Ctrl+C as in a terminal: a runner started in the background (``cmd &`` in a script)
    passes SIGINT on as ignored, and a server would then never see it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_block(block: Block, project: Path, env: dict[str, str], log: Path) -> list[Outcome]:
    """Run a block's commands in order in one bash (exports carry on); stop at the first
    command that contradicts the doc."""
    outcomes: list[Outcome] = []
    state = project.parent / ".block-env"
    state.write_text("")
    servers: list[tuple[Command, subprocess.Popen[bytes], float, Path]] = []
    try:
        for n, cmd in enumerate(block.commands, 1):
            if cmd.skip:
                continue
            script = (
                f"cd {shlex.quote(str(project))}\n. {shlex.quote(str(state))}\n{cmd.text}\n"
                f"__rc=$?\nexport -p > {shlex.quote(str(state))}\nexit $__rc\n"
            )
            out = log.with_name(f"{log.stem}-{n}-{cmd.line}.log")
            t0 = time.perf_counter()
            with out.open("wb") as fh:
                proc = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=project,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminal_signals,  # noqa: PLW1509 (signal reset only)
                )
                if cmd.serves is not None:
                    if not wait_free(cmd.serves, 30):
                        _stop(proc)
                        outcomes.append(
                            Outcome(block, cmd, 1, f"port {cmd.serves} is already in use", 0.0)
                        )
                        return outcomes
                    up = wait_port(cmd.serves, proc, SERVE_WAIT_S)
                    if not up:
                        rc = proc.poll() if proc.poll() is not None else _stop(proc)
                        outcomes.append(
                            Outcome(
                                block,
                                cmd,
                                rc if rc else 1,
                                f"never listened on :{cmd.serves}\n" + out.read_text(),
                                time.perf_counter() - t0,
                            )
                        )
                        return outcomes
                    servers.append((cmd, proc, t0, out))
                    continue
                try:
                    rc: int | None = proc.wait(COMMAND_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    rc = _stop(proc)
                    rc = None
            o = Outcome(block, cmd, rc, out.read_text(errors="replace"), time.perf_counter() - t0)
            outcomes.append(o)
            if o.problem:
                return outcomes
            handover = handover_block(block, cmd, o.output)
            if handover is not None:
                outcomes.extend(
                    run_block(handover, project, env, log.with_name(log.stem + "-next.log"))
                )
                if any(x.problem for x in outcomes):
                    return outcomes
    finally:
        import signal

        for cmd, proc, t0, out in servers:
            rc = _stop(proc, signal.SIGINT)  # what a user does: Ctrl+C
            text = out.read_text(errors="replace")
            if cmd.serves is not None and not wait_free(cmd.serves):
                rc, text = 1, text + f"\n:{cmd.serves} still held 60 s after Ctrl+C"
            outcomes.append(Outcome(block, cmd, rc, text, time.perf_counter() - t0))
    return outcomes


def run_all(
    root: Path, blocks: list[Block] | None = None, start: str | None = None, echo: bool = False
) -> list[Outcome]:
    """Run every block (from ``start`` = ``FILE:LINE`` of a block, when resuming) in a
    workspace under ``root``; stop at the first command that contradicts its doc."""
    project = make_workspace(root)
    env = workspace_env(project)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    blocks = all_blocks() if blocks is None else blocks
    if start:
        names = [b.where for b in blocks]
        if start not in names:
            raise SystemExit(f"--from {start}: no such block (blocks: {', '.join(names)})")
        blocks = blocks[names.index(start) :]
    outcomes: list[Outcome] = []
    for b in blocks:
        if b.skip:
            continue
        stem = b.where.replace("/", "_").replace(":", "_")
        got = run_block(b, project, env, logs / f"{stem}.log")
        outcomes.extend(got)
        if echo:
            for o in got:
                print(
                    f"{o.where:<28} rc={o.rc} {o.seconds:7.1f}s  {o.command.text[:90]}", flush=True
                )
        if any(o.problem for o in got):
            break
    return outcomes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--from", dest="start", help="FILE:LINE of the block to start from")
    ap.add_argument("--list", action="store_true", help="list the blocks and their marks")
    args = ap.parse_args(argv)
    if args.list:
        for b in all_blocks():
            print(b.where, f"SKIP: {b.skip}" if b.skip else "")
            for c in b.commands:
                tags = f" [exit {c.expect_exit}]" * (c.expect_exit != (0,))
                tags += f" [serves :{c.serves}]" * (c.serves is not None)
                tags += f" SKIP: {c.skip}" * bool(c.skip)
                print(f"   {c.line:>4} {c.text[:80]}{tags}")
        return 0
    outcomes = run_all(args.workspace, start=args.start, echo=True)
    bad = [o for o in outcomes if o.problem]
    for o in bad:
        print(f"\nFAILED {o.where}: {o.problem}\n$ {o.command.text}\n{o.output[-4000:]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())


def exit_code_table() -> str:
    """The README's exit-code table rows, from the one definition (wattwise.errors)."""
    from wattwise.errors import EXIT_CODES

    return "\n".join(f"| {code} | {meaning} |" for code, meaning in sorted(EXIT_CODES.items()))
