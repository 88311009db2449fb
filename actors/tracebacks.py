"""The texts of failure events: tracebacks without the cost of caret anchors, and texts
cut to a size the log can always hold.

Python 3.11's `traceback.format_exception` parses each source line with `ast` to draw
``^^^^`` markers under the failing expression, and `traceback.extract_tb` computes
column positions for every frame; on a hot failure path that dominates the cost of
recording a failure. The log keeps the classic text: every frame's file, line,
function and source, the exception line, and the chain of causes and contexts.

A failure is always recorded, whatever its exception says: each text of a failure
event (the exception's message, its traceback, a decision's reason, a health check's
detail) is cut to at most `FAILURE_TEXT_BYTES` bytes of JSON, or less when the store's
``max_payload_bytes`` leaves less room, so the event fits the store's limit. A cut keeps
the beginning and the end of the text around a marker line naming how many characters
were left out (``... [1,999,000 characters cut] ...``), and the event says
``truncated=True``. Characters UTF-8 cannot hold (lone surrogates) are written as
backslash escapes. The error policy and the asker always get the exception object
itself, untouched.
"""

from __future__ import annotations

import linecache
import re
import traceback
from typing import TypeVar

import msgspec

from actorlog.actors.redaction import redact_event

FAILURE_TEXT_BYTES = 32 * 1024
"""The most bytes (as JSON) a failure event keeps of each of its texts: message, traceback, reason."""

SEQ_ROOM = 64
"""Bytes kept free under the store's limit for seqs filled in when the row is written (``trigger_seq``)."""

_CUT = "\n... [{:,} characters cut] ...\n"
_CUT_PATTERN = re.compile(r"\n\.\.\. \[([0-9,]+) characters cut\] \.\.\.\n")
_encode = msgspec.json.Encoder().encode

S = TypeVar("S", bound=msgspec.Struct)

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


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder naming its type when its ``__str__`` raises."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a failure's text must not stop it being recorded
        return f"<{type(exc).__qualname__}.__str__ raised; no message>"


def encodable(text: str) -> str:
    """``text``, with any character UTF-8 cannot hold (a lone surrogate) as a backslash escape."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` made encodable and, if its JSON form is over ``limit`` bytes, cut in the
    middle (beginning and end kept around a marker) to fit; and whether it was cut."""
    text = encodable(text)
    if len(text) * 6 + 2 <= limit:  # even if every character took the most JSON can spend on one
        return text, False
    size = len(_encode(text))
    if size <= limit:
        return text, False
    keep = len(text) * limit // size
    for _ in range(32):
        keep = max(0, keep)
        head = keep - keep // 2
        tail = keep // 2
        candidate = text[:head] + _CUT.format(len(text) - head - tail) + (text[len(text) - tail:] if tail else "")
        size = len(_encode(candidate))
        if size <= limit:
            return candidate, True
        if keep == 0:
            break
        keep = min(keep - 1, keep * limit // size)
    return "", True  # not even the marker fits


def is_cut_of(recorded: str, text: str) -> bool:
    """Whether ``recorded`` is ``text`` as a failure event keeps it: the same (once made
    encodable), or the same cut in the middle by `cut_text`."""
    text = encodable(text)
    if recorded == text:
        return True
    for match in _CUT_PATTERN.finditer(recorded):
        head, tail = recorded[: match.start()], recorded[match.end():]
        left_out = int(match.group(1).replace(",", ""))
        if len(head) + left_out + len(tail) == len(text) and text.startswith(head) and text.endswith(tail):
            return True
    return False


def fit_texts(event: S, fields: tuple[str, ...], max_payload_bytes: int) -> tuple[S, bool]:
    """``event`` with its text ``fields`` cut so that each keeps at most `FAILURE_TEXT_BYTES`
    and the whole event fits ``max_payload_bytes`` (with `SEQ_ROOM` to spare); and whether
    any was cut. The texts share what room the event's other fields leave. The event is
    redacted first (`redact_event`): a cut must not keep the first characters of a secret."""
    event = redact_event(event)
    fields = tuple(name for name in fields if isinstance(getattr(event, name), str))
    texts: list[str] = [getattr(event, name) for name in fields]
    if all(text.isascii() for text in texts) and sum(len(text) * 6 + 2 for text in texts) <= min(
        FAILURE_TEXT_BYTES, max_payload_bytes // 4
    ):
        return event, False  # the common case (and no text at all): short texts in a store of any sensible limit
    empty = msgspec.structs.replace(event, **{name: "" for name in fields})
    room = max_payload_bytes - SEQ_ROOM - len(_encode(empty)) + 2 * len(fields)
    limit = max(2, min(FAILURE_TEXT_BYTES, room // len(fields)))
    changes: dict[str, str] = {}
    cut = False
    for name, text in zip(fields, texts):
        kept, was_cut = cut_text(text, limit)
        cut = cut or was_cut
        if kept is not text:
            changes[name] = kept
    return (msgspec.structs.replace(event, **changes) if changes else event), cut
