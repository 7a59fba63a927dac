"""Runs the 4.0 code blocks of book/migration.md (used by tests/test_migration.py).

Each ```python block on the page follows a marker line, a MyST comment:
``% migration: 2.x`` (OML 2.x's code, never run), ``% migration: run`` (run in full) or
``% migration: online`` (needs the internet: run with the network cut, and it must fail at a
download, inside a call that the block makes, and nowhere else).
"""

import re
import socket
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

PAGE = Path(__file__).resolve().parent.parent / "book" / "migration.md"
KINDS = ("2.x", "run", "online")
MARKER = re.compile(r"^% migration: (\S+)\s*$")
NO_NETWORK = "network cut by tests/migration_runner.py"


@dataclass
class Block:
    kind: str
    line: int  # the line of the first code line, counted from 1
    code: str

    @property
    def filename(self) -> str:
        return f"<migration.md:{self.line}>"


def parse(markdown: str) -> List[Block]:
    """Every ```python block of the page with its marker.

    Raises:
        ValueError: a python block without a marker, or with an unknown one.
    """
    lines = markdown.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "```python":
            i += 1
            continue
        previous = next((s for s in reversed(lines[:i]) if s.strip()), "")
        marker = MARKER.match(previous)
        if not marker or marker.group(1) not in KINDS:
            raise ValueError(
                f"migration.md line {i + 1}: a python block needs a marker line "
                f"'% migration: <kind>' ({', '.join(KINDS)}) right above it"
            )
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        blocks.append(Block(marker.group(1), i + 2, "\n".join(lines[i + 1 : end])))
        i = end + 1
    return blocks


@contextmanager
def network_cut() -> Iterator[None]:
    """Every connection and name lookup fails with NO_NETWORK while inside."""

    def refuse(*args, **kwargs):
        raise OSError(NO_NETWORK)

    saved = socket.getaddrinfo, socket.socket.connect, socket.create_connection
    socket.getaddrinfo, socket.socket.connect, socket.create_connection = (refuse,) * 3
    try:
        yield
    finally:
        socket.getaddrinfo, socket.socket.connect, socket.create_connection = saved


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def check_fails_at_download(block: Block, error: BaseException) -> None:
    """Raise AssertionError unless ``error`` came from the cut network, inside a call
    that ``block`` makes (not from the block's own code before the call)."""
    text = "".join(traceback.format_exception(error))
    if not any(NO_NETWORK in str(e) for e in _chain(error)):
        raise AssertionError(
            f"online block at line {block.line} failed, but not at a download:\n{text}"
        )
    frames = traceback.extract_tb(error.__traceback__)
    inside = [k for k, f in enumerate(frames) if f.filename == block.filename]
    if not inside or inside[-1] == len(frames) - 1:
        raise AssertionError(
            f"online block at line {block.line}: the download error was not raised "
            f"inside a call the block makes:\n{text}"
        )


def run(blocks: List[Block], namespace: Dict) -> None:
    """Run the blocks in order in ``namespace`` (the working directory is the caller's).

    Raises:
        AssertionError: an online block ran through, or failed other than at a download.
        Exception: whatever a run block raises, with the page's line in its traceback.
    """
    for block in blocks:
        if block.kind == "2.x":
            continue
        code = compile(block.code, block.filename, "exec")
        if block.kind == "run":
            exec(code, namespace)
            continue
        with network_cut():
            try:
                exec(code, namespace)
            except Exception as error:  # noqa: BLE001 - the error is what is tested
                check_fails_at_download(block, error)
            else:
                raise AssertionError(
                    f"online block at line {block.line} ran with the network cut: "
                    "mark it '% migration: run'"
                )
