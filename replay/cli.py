"""The ``actorlog`` command line: statistics, audits, verification and reproduction.

Every command but ``snapshot`` opens the log read-only and never changes it. Exit codes:
0 success, 1 when the answer is "no" (verification failed, failure not reproduced, a
--kind, --actor or --run that matches nothing in the log), 2 on bad input, with a
one-line error and no traceback; 130 when interrupted (Ctrl-C; ``tail --follow`` ends
with 0), and 141 (as a program killed by SIGPIPE) quietly when the reader of its
output goes away (``| head``).
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from actorlog.events import ActorlogError, UnknownEvent
from actorlog.events.errors import shown
from actorlog.replay.output import RowWriter, cell, output_options, table
from actorlog.replay.progress import progress
from actorlog.replay.rebuild import rebuild, take_snapshot
from actorlog.replay.reproduce import reproduce as run_reproduction
from actorlog.replay.documents import StatisticsDocument
from actorlog.replay.times import format_time, parse_time
from actorlog.store import EventRecord, EventStore
from actorlog.store.query import make_filter
from actorlog.store.checkpoints import witness_file, witness_line
from actorlog.store.errors import one_line
from actorlog.store.signing import generate_key

F = TypeVar("F", bound=Callable[..., Any])


def _version() -> str:
    try:
        return version("actorlog")
    except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
        return "unknown"


def _fail(message: str) -> NoReturn:
    click.echo(f"actorlog: error: {one_line(message)}", err=True)
    sys.exit(2)


# -- logging -----------------------------------------------------------------------------------

VERBOSE_ENV = "ACTORLOG_VERBOSE"
"""Set to 1 for the library's full log (debug messages and tracebacks) on stderr, like ``-v``."""


class OneLineWarnings(logging.Handler):
    """The library's warnings and errors as one ``actorlog: warning:`` line each on stderr,
    without tracebacks (``actorlog: error:`` stays the command's own final line).

    A failure that repeats (a full disk reported by every actor that could not write) is
    shown once. ``-v`` (or ACTORLOG_VERBOSE=1) shows everything in full instead.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and str(exc) and str(exc) not in message:
                message += f": {type(exc).__name__}: {exc}"
            message = one_line(message.strip())
            if message in self.seen:
                return
            if len(self.seen) >= 10_000:  # a long `actorlog run`: memory stays bounded
                self.seen.clear()
            self.seen.add(message)
            click.echo(f"actorlog: warning: {message}", err=True)  # "actorlog: error:" is the command's own last word
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


_LOGGERS = ("actorlog", "pykka")
_installed: list[tuple[logging.Logger, logging.Handler]] = []


def configure_logging(verbose: bool) -> None:
    """Route the library's logging to stderr: one line per warning by default, everything when verbose.

    Without a handler, Python prints every logged traceback (hundreds of lines for one full disk).
    """
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    else:
        handler = OneLineWarnings()
    while _installed:  # the command group may run more than once in one process (tests)
        logger, old = _installed.pop()
        logger.removeHandler(old)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if verbose:
            logger.setLevel(logging.DEBUG)
        _installed.append((logger, handler))


class EmptyAnswer(Exception):
    """A filter matches nothing in the whole log (a typo, most likely): exit status 1 and a hint."""


def friendly_errors(command: F) -> F:
    """Turn actorlog's own errors into a one-line message and exit status 2 (1 for `EmptyAnswer`)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EmptyAnswer as exc:
            click.echo(f"actorlog: {one_line(str(exc))}", err=True)
            sys.exit(1)
        except BrokenPipeError:  # before click's own handling, which exits 1 ("the answer is no")
            closed_pipe()
        except ActorlogError as exc:
            _fail(str(exc))
        except ValueError as exc:
            _fail(str(exc))
        except RecursionError:
            _fail("an event in the log is nested too deeply to print; read it with `actorlog query LOG --format csv` "
                  "or plain SQL (sqlite3, sqlite-utils)")

    return run  # type: ignore[return-value]


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Option callback: a time given as Unix seconds or ISO 8601."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


TIME: dict[str, Any] = {"callback": _time, "metavar": "TIME"}
LOG = click.argument("log", type=click.Path(path_type=str))


def _open(log: str) -> EventStore:
    """The one way a command opens a log to read it: read-only."""
    return EventStore.open_readonly(log)


class OneLineErrors(click.Group):
    """A command group whose usage errors are one line on stderr and exit status 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "actorlog"
            click.echo(f"actorlog: error: {exc.format_message()} (see '{command} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"actorlog: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("actorlog: interrupted", err=True)
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            closed_pipe()
        except SystemExit:
            _flush_or_quit()
            raise
        if standalone_mode and isinstance(result, int):
            sys.exit(result)
        _flush_or_quit()
        return result


INTERRUPTED = 130
"""Exit status on SIGINT (Ctrl-C): 128 + SIGINT, what shells expect."""

CLOSED_PIPE = 141
"""Exit status when the reader of stdout went away: 128 + SIGPIPE, as a Unix tool killed by it."""


def closed_pipe() -> NoReturn:
    """Leave quietly, status 141: the reader of our output (``| head``) has all it wanted.

    stdout is pointed at /dev/null first, so the interpreter's last flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (a test runner's buffer): nothing to silence
        pass
    sys.exit(CLOSED_PIPE)


def _flush_or_quit() -> None:
    """Flush stdout now, so a reader that went away is noticed here (exit 141), not at shutdown."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        closed_pipe()


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), prog_name="actorlog")
@click.option("-v", "--verbose", is_flag=True, envvar=VERBOSE_ENV,
              help=f"Show the library's whole log on stderr (debug messages, tracebacks); also {VERBOSE_ENV}=1. "
                   f"By default each warning is one line.")
def cli(verbose: bool) -> None:
    """actorlog: an event-sourced actor system with a flight recorder.

    Every command that reads a log opens it read-only and never changes it.
    Exit status: 0 success, 1 when the answer is no (or a --kind, --actor or --run
    matches nothing), 2 on bad input, 130 on Ctrl-C, 141 when the reader of the output
    goes away (| head).
    """
    configure_logging(verbose)


# -- stats -----------------------------------------------------------------------------


@cli.command()
@LOG
@click.option("--run", help="Only this run's events.")
@click.option("--until-seq", type=click.IntRange(min=0), help="Statistics as of this seq.")
@click.option("--as-of", **TIME, help="Statistics as of this time (Unix seconds or ISO 8601).")
@click.option("--recent", type=click.IntRange(min=0), default=10, show_default=True, help="Recent errors to list.")
@click.option("--window", type=click.FloatRange(min=0, min_open=True), help="Histogram window in seconds (default: all kept points).")
@click.option("--no-snapshots", is_flag=True, help="Fold the whole log instead of starting from a snapshot.")
@output_options(tabular=False)
@friendly_errors
def stats(
    log: str, run: str | None, until_seq: int | None, as_of: float | None, recent: int, window: float | None,
    no_snapshots: bool, output: str,
) -> None:
    """Statistics rebuilt by replay: plugin states, errors, metrics.

    The JSON document is {"as_of", "position", "plugins", "errors", "metrics"} (see the
    README). It covers the whole log, or one run with --run: then it is exactly what that
    run's live system reported (as of any seq with --until-seq). A --run the log does not
    hold exits 1, naming the closest runs it does.

    \b
    Examples:
      actorlog stats app.db
      actorlog stats app.db --json
      actorlog stats app.db --until-seq 1200 --format json
      actorlog stats app.db --as-of 2026-11-24T10:30:00Z --run 20261124T101800-3fa2c1
    """
    with _open(log) as store:
        check_present(store, run=run)
        with progress(store.last_seq() if until_seq is None else min(until_seq, store.last_seq()),
                      "replaying") as advance:
            statistics = rebuild(store, run=run, until_seq=until_seq, as_of=as_of,
                                 use_snapshots=not no_snapshots, progress=advance)
    document = statistics.document(as_of=as_of, recent=recent, window_seconds=window)
    if output == "table":
        _print_stats(document)
    else:
        _print_document(document, output, indent=2)


def _print_document(document: Any, output: str, *, indent: int | None = None) -> None:
    """A JSON document: indented for json (``indent``), on one line for jsonl."""
    text = json.dumps(document, indent=indent if output == "json" else None, sort_keys=True)
    click.echo(text)


def _print_stats(document: StatisticsDocument) -> None:
    click.echo(f"as of {format_time(document['as_of'])} (seq {document['position']})\n")
    plugins = document["plugins"]  # by run, then name
    if plugins:
        several = len(plugins) > 1  # a run column only when the plugins of several runs are listed
        rows = [([run] if several else []) + [name, p["state"], p["version"], p["restarts"],
                                               {True: "yes", False: "no", None: "-"}[p["healthy"]]]
                for run, named in plugins.items() for name, p in named.items()]
        headers = (["run"] if several else []) + ["plugin", "state", "version", "restarts", "healthy"]
        if not several:
            click.echo(f"plugins of run {next(iter(plugins))}:")
        click.echo(table(rows, headers) + "\n")
    errors = document["errors"]
    click.echo(f"errors: {errors['total_errors']}")
    if errors["total_errors"]:
        click.echo(table(sorted(errors["error_types"].items()), ["type", "count"]))
        click.echo("severity: " + ", ".join(f"{k} {v}" for k, v in errors["severity_distribution"].items()))
        rows = [[e["seq"], format_time(e["time"]), e["plugin"], e["severity"], e["type"], e["message"]]
                for e in errors["recent_errors"]]
        click.echo(table(rows, ["seq", "time", "plugin", "severity", "type", "message"]))
    metrics = document["metrics"]
    if metrics["counters"] or metrics["gauges"]:
        rows = [[n, "counter", v] for n, v in metrics["counters"].items()]
        rows += [[n, "gauge", v] for n, v in metrics["gauges"].items()]
        click.echo("\n" + table(rows, ["metric", "type", "value"], shrink=0))
    if metrics["histograms"]:
        figures = [[n, *(_figure(h[k]) for k in ("count", "min", "avg", "p50", "p95", "p99", "max"))]
                   for n, h in metrics["histograms"].items()]
        click.echo("\n" + table(figures, ["series", "count", "min", "avg", "p50", "p95", "p99", "max"], shrink=0))
    if metrics["dropped"]:
        click.echo(f"\nmeasurements dropped under overload: {metrics['dropped']}")


def _figure(value: object) -> str:
    """A histogram figure to four significant digits (a count stays whole)."""
    if isinstance(value, float):
        return format(value, ".4g")
    return cell(value)


# -- finding typos -----------------------------------------------------------------------------

_WHAT = {"kind": "no events of kind", "actor": "no events from actor", "run": "no events of run"}


def check_present(
    store: EventStore, *, run: str | None = None, actor: str | None = None, kinds: Iterable[str] = ()
) -> None:
    """Raise `EmptyAnswer` for a run, actor or kind the log holds no event of, naming the
    closest values it does hold: an empty answer from a typo is not silent."""
    make_filter(run=run, actor=actor, kinds=tuple(kinds) or None)  # text that cannot be a value: refused first
    for column, values in (("kind", tuple(kinds)), ("actor", (actor,)), ("run", (run,))):
        for value in values:
            if value is not None and not store.has_value(column, value):
                raise EmptyAnswer(_no_such(store, column, value))


def _no_such(store: EventStore, column: str, value: str) -> str:
    present = store.distinct_values(column)
    close = difflib.get_close_matches(value, present, n=3, cutoff=0.6) if len(value) <= HINT_TEXT else []
    named = shown(value)  # quoted briefly: a value may be huge
    if close:
        return f"{_WHAT[column]} {named}; did you mean {' or '.join(map(shown, close))}?"
    if not present:
        return f"{_WHAT[column]} {named}: the log holds no events"
    listing = ", ".join(map(shown, present[:10])) + (f" and {len(present) - 10} more" if len(present) > 10 else "")
    return f"{_WHAT[column]} {named}; the log holds: {listing}"


HINT_TEXT = 200
"""Values longer than this get no "did you mean" (comparing them costs more than it helps)."""


# -- query and tail --------------------------------------------------------------------


def _filters(function: F) -> F:
    for option in reversed([
        click.option("--run", help="Only this run."),
        click.option("--actor", help="Only events from this actor (plugin name, supervisor, errors, metrics, ...)."),
        click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable): plugin.started, failure.raised, ..."),
        click.option("--since", **TIME, help="From this time (Unix seconds or ISO 8601)."),
        click.option("--until", **TIME, help="Up to this time."),
        click.option("--correlation", help="Only this correlation id: one message's or failure's whole story."),
    ]):
        function = option(function)
    return function


EVENT_COLUMNS = ("seq", "time", "ts", "run", "actor", "kind", "version", "correlation", "payload")
TABLE_COLUMNS = ("seq", "time", "actor", "kind", "correlation")


def _parse_fields(text: str | None) -> list[str]:
    if text is None:
        return []
    fields = [part.strip() for part in text.split(",")]
    if not all(fields):
        raise click.BadParameter(f"{text!r} holds an empty field name; give names like plugin,exc_type,message",
                                 param_hint="'--fields'")
    taken = sorted(set(fields) & set(EVENT_COLUMNS))
    if taken:
        raise click.BadParameter(f"{taken[0]!r} is a column of every event already; --fields names payload fields",
                                 param_hint="'--fields'")
    return list(dict.fromkeys(fields))


class EventRows:
    """Turns event records into output rows: payload as an object for JSON, as JSON text for
    csv and tables, with ``fields`` pulled out of the payload into columns of their own."""

    def __init__(self, output: str, fields: list[str]) -> None:
        self.text = output in ("csv", "table")
        self.fields = fields
        self.columns = list(EVENT_COLUMNS[:-1]) + fields + ["payload"]
        self.table_columns = list(TABLE_COLUMNS) + fields + ["payload"]
        self._encode = msgspec.json.Encoder().encode

    def __call__(self, record: EventRecord) -> dict[str, Any]:
        """One output row for ``record``."""
        event = record.event
        payload: Any = event.payload if isinstance(event, UnknownEvent) else event
        row = {"seq": record.seq, "time": format_time(record.ts), "ts": record.ts, "run": record.run,
               "actor": record.actor, "kind": record.kind, "version": record.version,
               "correlation": record.correlation}
        if self.fields:
            plain = msgspec.to_builtins(payload)
            for name in self.fields:
                value = _field(plain, name)
                row[name] = self._encode(value).decode() if self.text and isinstance(value, (dict, list)) else value
        row["payload"] = self._encode(payload).decode() if self.text else payload
        return row

    def writer(self, output: str, headers: bool, last_seq: int) -> RowWriter:
        """A `RowWriter` for these rows; a table's seq column is as wide as ``last_seq``'s digits."""
        return RowWriter(
            self.columns, output, headers=headers, table_columns=self.table_columns, shrink="payload",
            widths={"seq": len(str(last_seq)), "time": 24}, empty="no events match", unclipped=("seq",),
        )


def _field(payload: Any, name: str) -> Any:
    """``payload``'s field ``name`` (dotted for a nested one), or None."""
    value = payload
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _check_range(since: float | None, until: float | None) -> None:
    if since is not None and until is not None and since > until:
        raise ValueError(f"--since ({format_time(since)}) is after --until ({format_time(until)}): nothing can match")


FLUSH_EVERY = 1000
"""Rows between flushes: a reader sees output in step with reading, for a few syscalls."""


def _write_records(writer: RowWriter, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        writer.write(row)
        if writer.count == 1 or writer.count % FLUSH_EVERY == 0:
            writer.flush()
    writer.close()


@cli.command()
@LOG
@_filters
@click.option("--from-seq", type=click.IntRange(min=0), help="From this seq.")
@click.option("--to-seq", type=click.IntRange(min=0), help="Up to this seq.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--fields", metavar="NAME,...", help="Payload fields to show as columns of their own "
              "(dotted for nested ones), e.g. plugin,exc_type,message.")
@click.option("--count", "count_only", is_flag=True, help="Print only how many events match.")
@output_options()
@friendly_errors
def query(
    log: str, run: str | None, actor: str | None, kinds: tuple[str, ...], since: float | None, until: float | None,
    correlation: str | None, from_seq: int | None, to_seq: int | None, limit: int | None, fields: str | None,
    count_only: bool, output: str, headers: bool,
) -> None:
    """Audit query: the events matching every filter, oldest first, streamed in any format.

    Filters are bound parameters: any text is safe. A --kind, --actor or --run the log
    holds no event of exits 1, naming the closest ones it does (a typo is not an empty
    answer). Output streams: JSON is one valid array written as it is read, a table fits
    the terminal (the payload is shortened last) and prints values exactly as stored.

    \b
    Examples:
      actorlog query app.db --kind failure.raised --kind recovery.decided
      actorlog query app.db --kind failure.raised --fields plugin,exc_type,message
      actorlog query app.db --correlation 9f2c4d1a0b3e5f67 --json
      actorlog query app.db --actor llm --since 2026-11-24T10:00:00Z --limit 20 --csv
      actorlog query big.db --nl | head
    """
    _check_range(since, until)
    if from_seq is not None and to_seq is not None and from_seq > to_seq:
        raise ValueError(f"--from-seq {from_seq} is after --to-seq {to_seq}: nothing can match")
    names = _parse_fields(fields)
    with _open(log) as store:
        check_present(store, run=run, actor=actor, kinds=kinds)
        selection = make_filter(run=run, actor=actor, kinds=kinds or None, since=since, until=until,
                                correlation=correlation, from_seq=from_seq, to_seq=to_seq)
        if count_only:
            last = store.last_seq()
            with progress(last, "counting") as advance:
                found = store.count_matching(selection, last_seq=last, progress=advance)
            found = found if limit is None else min(found, limit)
            if output == "table":
                click.echo(str(found))
            else:
                rows = RowWriter(["count"], output, headers=headers)
                rows.write({"count": found})
                rows.close()
            return
        make_row = EventRows(output, names)
        writer = make_row.writer(output, headers, store.last_seq())
        records = store.select(selection, lenient=True)
        _write_records(writer, _limited((make_row(r) for r in records), limit))


def _limited(rows: Iterator[dict[str, Any]], limit: int | None) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            return
        yield row


@cli.command()
@LOG
@_filters
@click.option("-n", "--lines", type=click.IntRange(min=1), default=10, show_default=True, help="How many newest events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they are appended, until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=0.2, show_default=True, help="Seconds between polls with --follow (on PostgreSQL, the longest wait for a commit's notification).")
@click.option("--fields", metavar="NAME,...", help="Payload fields to show as columns of their own.")
@output_options()
@friendly_errors
def tail(
    log: str, run: str | None, actor: str | None, kinds: tuple[str, ...], since: float | None, until: float | None,
    correlation: str | None, lines: int, follow: bool, interval: float, fields: str | None, output: str,
    headers: bool,
) -> None:
    """The newest events; with --follow, keep printing new ones as another process appends them.

    With --follow a table prints its header once, with fixed column widths, and Ctrl-C
    is how it ends (exit status 0). A --kind, --actor or --run the log holds no event of
    exits 1 without --follow (with it, tail waits for them).

    \b
    Examples:
      actorlog tail app.db -n 20
      actorlog tail app.db --follow --kind failure.raised --format jsonl
    """
    _check_range(since, until)
    if follow and output in ("json", "csv"):
        raise ValueError(f"--follow streams events one at a time: use --format table or jsonl, not {output}")
    names = _parse_fields(fields)
    with _open(log) as store:
        filters = dict(run=run, actor=actor, kinds=kinds or None, since=since, until=until, correlation=correlation)
        make_row = EventRows(output, names)
        if not follow:
            check_present(store, run=run, actor=actor, kinds=kinds)
            writer = make_row.writer(output, headers, store.last_seq())
            _write_records(writer, (make_row(r) for r in _newest(store, lines, filters, store.last_seq())))
            return
        try:  # Ctrl-C is how --follow ends, also while the first screen is printed: exit status 0
            # the first screen ends at a seq read once: what is committed after it is followed, none skipped
            after = store.last_seq()
            # widths for the digits the seq may grow to: the header stays true
            writer = make_row.writer(output, headers, after * 10 + 9)
            newest = _newest(store, lines, filters, after)
            writer.write_all(make_row(r) for r in newest)
            writer.fix_widths()
            writer.flush()
            while True:
                store.wait_for_commit(after, interval)  # LISTEN/NOTIFY on PostgreSQL; a poll every interval on SQLite
                fresh = list(store.events(from_seq=after + 1, lenient=True, **filters))  # type: ignore[arg-type]
                if fresh:
                    writer.write_all(make_row(r) for r in fresh)
                    writer.flush()
                    after = fresh[-1].seq
        except KeyboardInterrupt:
            return


def _newest(store: EventStore, lines: int, filters: dict[str, Any], last: int) -> list[EventRecord]:
    """The newest ``lines`` events matching ``filters`` up to seq ``last``."""
    start, found = max(1, last - lines * 4 + 1), []
    while True:
        found = list(store.events(from_seq=start, to_seq=last, lenient=True, **filters))
        if len(found) >= lines or start == 1:
            return found[-lines:]
        start = max(1, start - (last - start + 1) * 4)


# -- runs ------------------------------------------------------------------------------

RUN_COLUMNS = ("run", "start", "end", "events", "failures", "escalations", "stopped", "reason")


@cli.command()
@LOG
@output_options()
@friendly_errors
def runs(log: str, output: str, headers: bool) -> None:
    """Every run in the log: start, end, event counts, failures, and whether it stopped cleanly.

    \b
    Examples:
      actorlog runs app.db
      actorlog runs app.db --csv
    """
    with _open(log) as store:
        last = store.last_seq()
        with progress(last, "reading runs") as advance:
            summaries = store.run_summaries(last_seq=last, progress=advance)
    result: list[dict[str, Any]] = []
    for summary in summaries:
        stopped = _stopped(summary.clean, summary.escalations)
        result.append({
            "run": summary.run, "start": _seconds(summary.start), "end": _seconds(summary.end),
            "events": summary.events, "failures": summary.failures, "escalations": summary.escalations,
            "stopped": stopped,
        })
        if stopped in ("escalated", "failed"):  # why it did not stop cleanly
            result[-1]["reason"] = None if summary.reason is None else str(summary.reason)
    if output == "json":
        click.echo(json.dumps(result, indent=2))
        return
    if output in ("jsonl", "csv"):
        writer = RowWriter(RUN_COLUMNS, output, headers=headers)
        writer.write_all(result)
        writer.close()
        return
    rows = [{"run": r["run"], "start": _time_or_unknown(r["start"]), "end": _time_or_unknown(r["end"]),
             "events": r["events"], "failures": r["failures"], "stopped": _stop_text(r)} for r in result]
    writer = RowWriter(["run", "start", "end", "events", "failures", "stopped"], "table", headers=headers,
                       shrink="stopped", empty="no runs")
    writer.write_all(rows)
    writer.close()


def _stopped(clean: object, escalations: int | None) -> str | None:
    """How a run stopped: "clean", "escalated", "failed" (not clean without an escalation: a
    start that failed), or None while it has not stopped (still running, or killed)."""
    if clean is None:
        return None
    if clean:
        return "clean"
    return "escalated" if escalations else "failed"


def _stop_text(run: dict[str, Any]) -> str:
    if run["stopped"] is None:
        return "still running or killed"
    if run["stopped"] == "failed":
        return one_line(f"not clean: {run['reason'] or 'no reason recorded'}")
    return str(run["stopped"])


def _time_or_unknown(value: float | None) -> str:
    return "?" if value is None else format_time(value)


def _seconds(value: object) -> float | None:
    """A stored ts as a time, or None when a foreign writer left something else there."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- verify ----------------------------------------------------------------------------


@cli.command()
@LOG
@click.option("--quick", is_flag=True, help="Skip SQLite's check of the whole file (PRAGMA quick_check), for huge logs.")
@click.option("--public-key", type=click.Path(dir_okay=False),
              help="The signing key's .pub file: every signed checkpoint must verify.")
@click.option("--witness", type=click.Path(), help="A witness directory or .jsonl file: the log must hold every "
              "checkpoint it kept (truncation and rollback are found).")
@click.option("--expect", multiple=True, metavar="SEQ:HASH", help="The log must hold row SEQ with this chain hash "
              "(repeatable).")
@output_options(tabular=False)
@friendly_errors
def verify(
    log: str, quick: bool, public_key: str | None, witness: str | None, expect: tuple[str, ...], output: str
) -> None:
    """Check the file, the schema, the append-only triggers, the hash chain, and signatures.

    SQLite's own check of the file (PRAGMA quick_check) runs first, unless --quick; the
    triggers must be actorlog's own, not only carry their names. A plain chain shows edits
    only to someone who does not recompute it: with --public-key every signed checkpoint
    is checked, and with --witness or --expect the log's length and content are pinned.
    Exit 0 when intact, 1 when tampering or damage is found, 2 on bad input.

    \b
    Examples:
      actorlog verify app.db
      actorlog verify app.db --public-key log.key.pub --witness witness/
      actorlog verify app.db --expect 1740:3f2a...
      actorlog verify huge.db --quick --json
    """
    with _open(log) as store:
        with progress(store.last_seq(), "verifying") as advance:
            report = store.verify(check_file=not quick, public_key=public_key, witness=witness, expect=expect,
                                  progress=advance)
    if output != "table":  # the report as JSON, every finding with its seq
        click.echo(json.dumps(msgspec.to_builtins(report), indent=2 if output == "json" else None))
    elif report.ok:
        if report.file_checked:
            checked = "file intact (SQLite quick_check)"
        else:
            checked = "file check skipped (--quick)" if quick else "column types as created (the server checks its storage)"
        signed = f", signed up to seq {report.signed_up_to}" if report.signed_up_to else ""
        click.echo(
            f"ok: {report.events_checked} events, chain intact up to seq {report.last_seq}{signed}, triggers in place, "
            f"{checked}"
        )
        for note in report.notes:
            click.echo(f"note: {note}")
    else:
        for problem in report.problems:
            click.echo(f"FAILED: {problem}")
    sys.exit(0 if report.ok else 1)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@friendly_errors
def keygen(path: str) -> None:
    """Write an Ed25519 key pair for signed checkpoints: PATH (private, mode 0600) and PATH.pub.

    Give PATH to the writer (EventStore(..., signing_key=PATH), [store] signing_key, or
    $ACTORLOG_SIGNING_KEY) and PATH.pub to whoever verifies. The private key is never
    printed, logged or put in the log.

    \b
    Example:
      actorlog keygen ~/.actorlog/app.key
    """
    private, public, key = generate_key(path)
    click.echo(f"wrote {private} (private, mode 0600) and {public} (public); key id {key}")


@cli.command()
@LOG
@click.option("--witness", type=click.Path(), help="Also append it to this witness directory or .jsonl file.")
@friendly_errors
def checkpoint(log: str, witness: str | None) -> None:
    """Print the log's newest signed checkpoint as one line of JSON (exit 1 if it has none).

    Keep those lines somewhere an editor of the log cannot reach (--witness appends to a
    file there): `verify --witness` then finds truncation and rollback.

    \b
    Example:
      actorlog checkpoint app.db --witness /mnt/audit/witness/
    """
    with _open(log) as store:
        newest = store.newest_checkpoint()
    if newest is None:
        click.echo("no signed checkpoint in this log (write it with a signing key: see `actorlog keygen`)", err=True)
        sys.exit(1)
    record, event = newest
    line = witness_line(event, record.seq, record.hash, log)
    if witness is not None:
        target = witness_file(witness, log)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    click.echo(line)


# -- reproduce -------------------------------------------------------------------------


@cli.command()
@LOG
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--import-path", "import_paths", multiple=True, metavar="DIR",
              help="Folder to import the plugin's code from (repeatable). Default: none but the installed "
                   "packages; the current folder too with --trust or --trust-key.")
@click.option("--allow-env", "allow_env", multiple=True, metavar="NAME",
              help="Let the plugin read this environment variable (repeatable).")
@click.option("--allow-network", is_flag=True, help="Let the plugin connect to the network.")
@click.option("--allow-processes", is_flag=True, help="Let the plugin start programs (the sandbox plugin runs them).")
@click.option("--trust", is_flag=True, help="Allow all of the above: only for a log whose origin you trust.")
@click.option("--trust-key", "trust_key", metavar="PUB", type=click.Path(path_type=str),
              help="Allow all of the above if the log's checkpoints are signed by this public key up to SEQ.")
@output_options(tabular=False)
@friendly_errors
def reproduce(
    log: str, seq: int, import_paths: tuple[str, ...], allow_env: tuple[str, ...], allow_network: bool,
    allow_processes: bool, trust: bool, trust_key: str | None, output: str,
) -> None:
    """Replay the messages that led to the failure at SEQ through a fresh plugin instance.

    Nothing is written to the log. A log may come from someone else, and its config and
    messages decide what the plugin does, so by default the plugin gets no environment
    variables, no network and no child processes, and runs in a child process whose
    environment holds only what you allowed (on Linux with a network namespace of its
    own); the report says what it tried to use and which isolation held it. Its own
    file writes are not withheld: this guards installed plugins misdirected by a log,
    not hostile plugin code. A log signed by a key you trust (--trust-key PUB) gets them all. Exit 0 if the same
    exception happens at the same message, 1 if not (or if it cannot be reproduced), 2 if
    SEQ is not a failure or the log is not signed by the key given.

    \b
    Examples:
      actorlog query app.db --kind failure.raised
      actorlog reproduce app.db 1234
      actorlog reproduce app.db 1234 --allow-env OPENAI_API_KEY --allow-network
      actorlog reproduce app.db 1234 --trust-key audit.key.pub
    """
    if not import_paths and (trust or trust_key is not None):
        import_paths = (".",)  # a log you trust may name a module of the folder you are in
    for folder in reversed(import_paths):
        sys.path.insert(0, os.path.abspath(folder))
    outcome = run_reproduction(
        log, seq, allow_env=allow_env, allow_network=allow_network, allow_processes=allow_processes, trust=trust,
        trust_key=trust_key,
    )
    if output != "table":
        _print_document(msgspec.to_builtins(outcome), output, indent=2)
    else:
        verdict = "REPRODUCED" if outcome.reproduced else "NOT REPRODUCED"
        click.echo(f"{verdict}: failure {seq} of plugin {outcome.plugin!r} ({outcome.class_path}, "
                   f"recorded version {outcome.recorded_version}); {outcome.messages_replayed} message(s) replayed")
        click.echo("withheld: " + (", ".join(outcome.withheld) or "nothing (trusted)"))
        for refused in outcome.refused:
            click.echo(f"refused: {refused}")
        for note in outcome.notes:
            click.echo(f"note: {note}")
        click.echo(f"\n--- recorded: {outcome.recorded_exc_type} {_at_message(outcome.trigger_seq)}\n"
                   f"{outcome.recorded_traceback}")
        if outcome.exc_type:
            click.echo(f"--- reproduced: {outcome.exc_type} {_at_message(outcome.failed_at_seq)}\n{outcome.traceback}")
    sys.exit(0 if outcome.reproduced else 1)


def _at_message(seq: int | None) -> str:
    return f"at message seq {seq}" if seq is not None else "outside any message (start, stop or health check)"


# -- snapshot --------------------------------------------------------------------------


@cli.command()
@LOG
@click.option("--run", help="Snapshot one run's statistics instead of all runs'.")
@output_options(tabular=False)
@friendly_errors
def snapshot(log: str, run: str | None, output: str) -> None:
    """Store a snapshot of the rebuilt statistics, so later rebuilds fold only what follows.

    The one command that writes: it adds a row to the snapshots table and never touches events.

    \b
    Example:
      actorlog snapshot app.db
    """
    with _open(log) as reader:  # refuse a missing or foreign file before opening it for writing
        try:
            check_present(reader, run=run)
        except EmptyAnswer as exc:  # not an empty answer here: a snapshot of nothing is refused
            raise ValueError(f"{exc} (see `actorlog runs LOG`)") from None
        total = reader.last_seq()
    with EventStore(log) as store, progress(total, "snapshotting") as advance:
        position = take_snapshot(store, run=run, progress=advance)
    if output != "table":
        _print_document({"position": position, "run": run}, output)
    else:
        click.echo(f"snapshot stored at seq {position}" + (f" for run {run}" if run else ""))
