"""How the commands print: a table on a terminal, plain aligned text when piped, JSON with
``--json``; colour and a progress spinner only on a terminal, and only with rich.

rich is optional (``pip install "llm-bridge-cn[cli]"``): without it every command prints
the same tables as plain text, without colour. It is imported on first use, so neither
``import llm_bridge`` nor ``llm-bridge --help`` loads it. rich also honours ``NO_COLOR``.

Plain tables are for people and for ``awk`` alike: one row a line, columns separated by
at least two spaces, numbers right-aligned, no borders.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, NamedTuple, Optional, TextIO

__all__ = ["Column", "Output", "mask", "rich_console"]

#: How verdicts and notes are coloured on a terminal (rich styles).
STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "note": "dim"}


class Column(NamedTuple):
    """A table column: its heading and whether its cells are right-aligned (numbers)."""

    name: str
    right: bool = False


def mask(secret: str) -> str:
    """A credential as it may be shown: its first 4 characters and an ellipsis, and its
    length (nothing of a value under 8 characters, where 4 would be half of it)."""
    shown = secret[:4] if len(secret) >= 8 else ""
    return f"{shown}… ({len(secret)} characters)"


def rich_console(stream: TextIO) -> Any:
    """A rich ``Console`` writing to ``stream`` when it is a terminal and rich is installed,
    else None (the caller prints plain text)."""
    if not _isatty(stream):
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream, highlight=False, soft_wrap=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(text: str) -> int:
    """Columns a string takes on a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: yuan amounts must not pass through a float
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Output:
    """Where a command's results go: ``stdout`` for results (table or JSON), ``stderr`` for
    notes, errors and progress. ``json_mode`` is the command's ``--json``."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._consoles: dict[int, Any] = {}

    def console(self, stream: TextIO) -> Any:
        """The rich console for ``stream`` (cached), or None: not a terminal, or no rich."""
        key = id(stream)
        if key not in self._consoles:
            self._consoles[key] = rich_console(stream)
        return self._consoles[key]

    # ------------------------------------------------------------------ results

    def json(self, value: Any) -> None:
        """``value`` as indented JSON on stdout (Decimals as exact strings)."""
        text = json.dumps(value, ensure_ascii=False, indent=2, default=_json_default)
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def json_line(self, value: Any) -> None:
        """``value`` as one line of JSON on stdout (a stream of records)."""
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def table(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[Any]],
        *,
        title: Optional[str] = None,
        footer: Optional[Sequence[Any]] = None,
    ) -> None:
        """A table on stdout: rich's on a terminal, else plain aligned text. ``footer`` is a
        last row set apart (a total)."""
        cells = [[_cell(v) for v in row] for row in rows]
        foot = [_cell(v) for v in footer] if footer is not None else None
        console = self.console(self.stdout)
        if console is not None:
            self._rich_table(console, columns, cells, title, foot)
            return
        if title:
            self.stdout.write(title + "\n")
        widths = [_width(c.name) for c in columns]
        for row in [*cells, *([foot] if foot else [])]:
            widths = [max(w, _width(v)) for w, v in zip(widths, row)]

        def line(values: Sequence[str]) -> str:
            parts = []
            for column, width, value in zip(columns, widths, values):
                pad = " " * (width - _width(value))
                parts.append(pad + value if column.right else value + pad)
            return "  ".join(parts).rstrip()

        out = [line([c.name for c in columns]), *(line(row) for row in cells)]
        if foot is not None:
            out += ["  ".join("-" * w for w in widths), line(foot)]
        self.stdout.write("\n".join(out) + "\n")
        self.stdout.flush()

    @staticmethod
    def _rich_table(
        console: Any,
        columns: Sequence[Column],
        cells: list[list[str]],
        title: Optional[str],
        foot: Optional[list[str]],
    ) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_footer=foot is not None)
        for index, column in enumerate(columns):
            table.add_column(
                column.name,
                justify="right" if column.right else "left",
                footer=foot[index] if foot is not None else "",
                overflow="fold",
            )
        for row in cells:
            table.add_row(*row)
        console.print(table)

    # ------------------------------------------------------------------ lines

    def finding(self, verdict: str, check: str, text: str, fix: Optional[str] = None) -> None:
        """One checked fact on one line of stdout: ``verdict  check: text  fix: ...``."""
        tail = f"  fix: {fix}" if fix else ""
        console = self.console(self.stdout)
        if console is None:
            self.stdout.write(f"{verdict:<4}  {check}: {text}{tail}\n")
            self.stdout.flush()
            return
        from rich.text import Text

        line = Text()
        line.append(f"{verdict:<4}", style=STYLES.get(verdict, ""))
        line.append(f"  {check}: ", style="bold")
        line.append(text)
        if fix:
            line.append("  fix: ", style="bold")
            line.append(fix)
        console.print(line)

    def note(self, text: str, *, style: str = "note") -> None:
        """A remark on stderr (dim on a terminal): what a table does not say."""
        self._styled(self.stderr, text, style)

    def error(self, text: str) -> None:
        """``llm-bridge: <text>`` on stderr (red on a terminal)."""
        self._styled(self.stderr, f"llm-bridge: {text}", "fail")

    def write(self, text: str, *, err: bool = False, style: Optional[str] = None) -> None:
        """Raw text, no newline added (a streamed answer), flushed at once."""
        stream = self.stderr if err else self.stdout
        console = self.console(stream) if style else None
        if console is not None:
            from rich.text import Text

            console.print(Text(text, style=STYLES.get(style or "", style or "")), end="")
        else:
            stream.write(text)
        stream.flush()

    def _styled(self, stream: TextIO, text: str, style: str) -> None:
        console = self.console(stream)
        if console is None:
            stream.write(text + "\n")
            stream.flush()
            return
        from rich.text import Text

        console.print(Text(text, style=STYLES.get(style, style)))

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A spinner with ``text`` on stderr while the block runs (a terminal with rich
        only; otherwise nothing, so piped output stays clean)."""
        console = self.console(self.stderr)
        if console is None:
            yield
            return
        with console.status(text):
            yield
