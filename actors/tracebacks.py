"""Traceback text for ``failure.raised`` events, without the cost of caret anchors.

Python 3.11's `traceback.format_exception` parses each source line with `ast` to draw
``^^^^`` markers under the failing expression, and `traceback.extract_tb` computes
column positions for every frame; on a hot failure path that dominates the cost of
recording a failure. The log keeps the classic text: every frame's file, line,
function and source, the exception line, and the chain of causes and contexts.
"""

from __future__ import annotations

import linecache
import traceback

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its causes and contexts, oldest first, as text."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    joiner = ""
    chain: list[tuple[BaseException, str]] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, joiner))
        if current.__cause__ is not None:
            current, joiner = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, joiner = current.__context__, _CONTEXT
        else:
            current = None
    for item, link in reversed(chain):
        if item.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            for frame, lineno in traceback.walk_tb(item.__traceback__):
                code = frame.f_code
                parts.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n')
                line = linecache.getline(code.co_filename, lineno, frame.f_globals).strip()
                if line:
                    parts.append(f"    {line}\n")
        parts.extend(traceback.format_exception_only(type(item), item))
        if link:
            parts.append(link)
    return "".join(parts)
