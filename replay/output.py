"""The command line's one output convention, and writers that stream every format.

Every command takes ``--format`` (``table``, ``json``, ``jsonl``, ``csv`` where its answer
is tabular) and ``--json`` as its alias; tabular commands also take sqlite-utils'
``--csv``, ``--nl`` and ``-t/--table``, and ``--no-headers``. `RowWriter` writes rows one
at a time in any format, so memory stays flat and the first line comes at once on a
log of any length: JSON is a valid array written element by element, and a table takes
its column widths from the first rows (and the terminal's width) and keeps them, so a
header printed once stays true (``tail --follow``).

Tables never reinterpret a value: a version "1.10" or a correlation "1234567890123e45"
is printed as it is stored (tabulate's number parsing is off everywhere).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, TypeVar

import click
import msgspec
from tabulate import tabulate

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "jsonl", "csv")
DOCUMENT_FORMATS = ("table", "json", "jsonl")
"""For commands whose answer is a document, not rows: jsonl is the document on one line."""

PIPE_CELL_LIMIT = 1000
"""Characters of a table cell kept when no terminal bounds it: whole for any ordinary value
(exc_type and message stay readable), bounded for a multi-megabyte one (use --json for those)."""

SAMPLE_ROWS = 200
"""Rows a streamed table reads before fixing its column widths."""

ELLIPSIS = "…"


def output_options(*, tabular: bool = True) -> Callable[[F], F]:
    """Add the output options to a command; it receives ``output`` (a format) and ``headers`` (bool).

    ``--format X``, ``--json``, ``--csv``, ``--nl`` (jsonl) and ``-t/--table`` name a format;
    giving two different ones is a usage error (exit 2).
    """
    choices = FORMATS if tabular else DOCUMENT_FORMATS

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            named = [value for value in (
                kwargs.pop("format_option"), "json" if kwargs.pop("json_flag") else None,
                "csv" if kwargs.pop("csv_flag", False) else None, "jsonl" if kwargs.pop("nl_flag", False) else None,
                "table" if kwargs.pop("table_flag", False) else None,
            ) if value is not None]
            if len(set(named)) > 1:
                raise click.UsageError(f"choose one output format, not {' and '.join(sorted(set(named)))}")
            kwargs["output"] = named[0] if named else "table"
            if tabular:
                kwargs["headers"] = not kwargs.pop("no_headers")
            return function(*args, **kwargs)

        options = [
            click.option("--format", "format_option", type=click.Choice(choices, case_sensitive=False),
                         help="Output format (default: table)."),
            click.option("--json", "json_flag", is_flag=True, help="Same as --format json."),
        ]
        if tabular:
            options += [
                click.option("--csv", "csv_flag", is_flag=True, help="Same as --format csv."),
                click.option("--nl", "nl_flag", is_flag=True, help="Same as --format jsonl: one JSON object a line."),
                click.option("-t", "--table", "table_flag", is_flag=True, help="Same as --format table."),
                click.option("--no-headers", is_flag=True, help="Leave out the header line of csv and table output."),
            ]
        else:
            options += [click.option("--nl", "nl_flag", is_flag=True, help="Same as --format jsonl: one line of JSON.")]
        command: Callable[..., Any] = run
        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[return-value]

    return decorate


def terminal_width() -> int | None:
    """Columns a table may use when stdout is a terminal: $COLUMNS if set, else the terminal's
    width. None when stdout is a pipe or a file: those get whole values (up to
    `PIPE_CELL_LIMIT` characters a cell), and a $COLUMNS some parent exported for its own
    terminal does not cut them."""
    try:
        if not sys.stdout.isatty():
            return None
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        return os.get_terminal_size(sys.stdout.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        return None


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the cut marked with an ellipsis."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def cell(value: Any) -> str:
    """A value as a table or csv cell, exactly as stored (never reparsed as a number)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value)
    return str(value)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, width: int | None = None,
          shrink: int | None = None) -> str:
    """A small, complete table (stats, runs), through tabulate with number parsing off.

    With ``width``, column ``shrink`` (default: the last) is shortened so lines fit.
    """
    texts = [[cell(value) for value in row] for row in rows]
    width = terminal_width() if width is None else width
    if width is not None and texts:
        column = len(headers) - 1 if shrink is None else shrink
        others = sum(max(len(headers[i]), *(len(r[i]) for r in texts)) + 2 for i in range(len(headers)) if i != column)
        room = max(width - others, len(headers[column]), 8)
        for row in texts:
            row[column] = clip(row[column], room)
    return tabulate(texts, headers=list(headers), disable_numparse=True)


class RowWriter:
    """Writes rows (dicts keyed by ``columns``) one at a time in one format, flushing as it goes.

    ``table_columns`` are the columns a table shows (default: all); ``shrink`` is the one
    shortened to fit the terminal (the payload: shortened last, so exc_type and message
    stay readable); ``widths`` gives fixed widths known in advance (a seq's digits).
    """

    def __init__(
        self,
        columns: Sequence[str],
        output: str,
        *,
        headers: bool = True,
        table_columns: Sequence[str] | None = None,
        shrink: str | None = None,
        widths: dict[str, int] | None = None,
        empty: str = "no rows",
        unclipped: Sequence[str] = (),
        out: IO[str] | None = None,
    ) -> None:
        self.columns = list(columns)
        self.output = output
        self.headers = headers
        self.table_columns = list(table_columns or columns)
        self.shrink = shrink
        self.known = dict(widths or {})
        self.empty = empty
        self.unclipped = {self.table_columns.index(name) for name in unclipped if name in self.table_columns}
        self._encode = msgspec.json.Encoder().encode
        self.out = out if out is not None else sys.stdout
        self.count = 0
        self._widths: list[int] | None = None
        self._room: int | None = None
        self._pending: list[dict[str, Any]] = []
        self._csv = csv.writer(self.out) if output == "csv" else None
        self._started = False

    def write(self, row: dict[str, Any]) -> None:
        """Write one row (a table holds the first rows back until its widths are fixed)."""
        self.count += 1
        if self.output == "jsonl":
            self.out.write(self._encode(row).decode() + "\n")
        elif self.output == "json":
            self.out.write(("[\n  " if not self._started else ",\n  ") + self._encode(row).decode())
            self._started = True
        elif self.output == "csv":
            assert self._csv is not None
            if not self._started and self.headers:
                self._csv.writerow(self.columns)
            self._started = True
            self._csv.writerow([cell(row.get(name)) for name in self.columns])
        else:
            if self._widths is None:
                self._pending.append(row)
                if len(self._pending) < SAMPLE_ROWS:
                    return
                self._fix_widths()
            self._line(row)

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        """Write every row; a table's first lines go out as soon as its widths are fixed."""
        for row in rows:
            self.write(row)

    def flush(self) -> None:
        """Flush the stream (a table still holds back its first rows until its widths are fixed)."""
        self.out.flush()

    def close(self) -> None:
        """End the output: close a JSON array, say so when a table or JSON got no rows."""
        if self.output == "json":
            self.out.write("\n]\n" if self._started else "[]\n")
        elif self.output == "csv" and not self._started and self.headers:
            assert self._csv is not None
            self._csv.writerow(self.columns)
        elif self.output == "table":
            if self._pending:
                self._fix_widths()
            elif self._widths is None and self.count == 0:
                self.out.write(self.empty + "\n")
        self.out.flush()

    def fix_widths(self) -> None:
        """Fix a table's widths now (from the rows held back, or the headers), printing the header:
        ``tail --follow`` does so after its first screen, even an empty one."""
        if self.output == "table" and self._widths is None:
            self._fix_widths()
        elif self.output == "csv" and not self._started and self.headers:
            assert self._csv is not None
            self._csv.writerow(self.columns)
            self._started = True

    # -- tables ------------------------------------------------------------------------------

    def _fix_widths(self) -> None:
        pending, self._pending = self._pending, []
        names = self.table_columns
        widths = []
        for name in names:
            natural = min(max([len(name)] + [len(cell(row.get(name))) for row in pending]), PIPE_CELL_LIMIT)
            widths.append(max(natural, self.known.get(name, 0)))
        room = self._room = terminal_width()
        if room is not None and self.shrink in names:
            index = names.index(self.shrink)
            others = sum(widths) - widths[index] + 2 * (len(names) - 1)
            widths[index] = max(room - others, len(self.shrink), 8)
            # still too wide (a narrow terminal): take from the widest other columns that may be cut
            while sum(widths) + 2 * (len(names) - 1) > room:
                cuttable = [i for i in range(len(names)) if i != index and i not in self.unclipped and widths[i] > 6]
                if not cuttable:
                    break
                widest = max(cuttable, key=lambda i: widths[i])
                widths[widest] -= 1
        self._widths = widths
        if self.headers:
            self.out.write(self._join([name for name in names]) + "\n")
            rules = ["-" * w for w in widths]
            if room is None:  # an unbounded last column: its rule as long as its header's
                rules[-1] = "-" * max(len(names[-1]), 8)
            self.out.write(self._join(rules) + "\n")
        for row in pending:
            self._line(row)

    def _line(self, row: dict[str, Any]) -> None:
        self.out.write(self._join([cell(row.get(name)) for name in self.table_columns]) + "\n")

    def _join(self, cells: list[str]) -> str:
        assert self._widths is not None
        last = len(cells) - 1
        parts = []
        for index, (text, width) in enumerate(zip(cells, self._widths)):
            text = " ".join(text.splitlines())
            if index == last:  # the last column is padded by nothing: cut only to fit a terminal
                parts.append(clip(text, width if self._room is not None else PIPE_CELL_LIMIT))
            elif index in self.unclipped:
                parts.append(text.ljust(width))
            else:
                parts.append(clip(text, width).ljust(width))
        return "  ".join(parts).rstrip()
