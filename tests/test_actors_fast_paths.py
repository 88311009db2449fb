"""The common cases made cheap: failures decided where they happened, the inbox bound,
the writer's inbox, correlation ids. Behaviour only: what is logged and what is handled."""

from __future__ import annotations

import threading
from pathlib import Path

from actor_helpers import read_log, wait_until
from actorlog.actors import ActorSystem, ErrorPolicy, Plugin, handler
from actorlog.actors.correlation import new_correlation
from actorlog.actors.inbox_bound import InboxBound
from actorlog.events import Message
from actorlog.store import EventStore
from actorlog.store.inbox import RowInbox
from actorlog.store.rows import Batch


class Boom(Message, tag="fast.boom", frozen=True):
    n: int


class Count(Message, tag="fast.count", frozen=True):
    pass


class Failing(Plugin):
    """Raises ValueError (medium: the default decision is continue) on every Boom."""

    def on_start(self) -> None:
        self.deliveries: list[int] = []

    @handler
    def boom(self, message: Boom) -> None:
        self.deliveries.append(message.n)
        raise ValueError(f"boom {message.n}")

    @handler
    def count(self, message: Count) -> list[int]:
        return list(self.deliveries)


def _failures_decided(system: ActorSystem, expected: int) -> None:
    wait_until(lambda: system.error_statistics(recent=0).total_errors >= expected, what="failures decided")
    system.flush()


def test_each_failures_assessment_and_decision_are_committed_together_right_after_it(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with ActorSystem(path) as system:
        names = [f"failing-{i}" for i in range(4)]
        for name in names:
            system.register(name, Failing)
        system.start()
        for n in range(200):
            system.tell(names[n % 4], Boom(n=n))
        _failures_decided(system, 200)
        assert [system.ask(name, Count()) for name in names] == [list(range(i, 200, 4)) for i in range(4)]
    records = read_log(path)
    by_seq = {r.seq: r for r in records}
    raised = [r for r in records if r.kind == "failure.raised"]
    assert len(raised) == 200
    for failure in raised:
        assessed = [r for r in records if r.kind == "failure.assessed" and r.event.failure_seq == failure.seq]
        assert len(assessed) == 1
        decided = by_seq[assessed[0].seq + 1]  # one batch: nothing of another plugin between them
        assert decided.kind == "recovery.decided" and decided.event.failure_seq == failure.seq
        assert decided.event.action == "continue" and decided.actor == assessed[0].actor == "errors"
        assert decided.correlation == assessed[0].correlation == failure.correlation
        assert by_seq[failure.event.trigger_seq].kind == "message.received"


def test_a_retry_the_defaults_decide_redelivers_then_continues(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    policy = ErrorPolicy(actions={"medium": "retry"}, max_redeliveries=2)
    with ActorSystem(path, error_policy=policy) as system:
        system.register("failing", Failing)
        system.start()
        system.tell("failing", Boom(n=7))
        system.tell("failing", Boom(n=8))
        _failures_decided(system, 6)
        assert system.ask("failing", Count()) == [7, 7, 7, 8, 8, 8]  # the next message waits for the retries
    decided = [r.event.action for r in read_log(path, kinds=["recovery.decided"])]
    assert decided == ["retry", "retry", "continue"] * 2


def test_an_asked_failure_is_decided_and_the_asker_gets_the_exception(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with ActorSystem(path) as system:
        system.register("failing", Failing)
        system.start()
        try:
            system.ask("failing", Boom(n=1))
        except ValueError as exc:
            assert str(exc) == "boom 1"
        else:
            raise AssertionError("the ask did not raise")
        assert system.ask("failing", Count()) == [1]
    assert [r.kind for r in read_log(path) if r.kind.startswith(("failure.", "recovery."))] == [
        "failure.raised", "failure.assessed", "recovery.decided",
    ]


def test_the_inbox_bound_counts_slots_taken_given_back_and_refused() -> None:
    bound = InboxBound(2)
    assert bound.take(0) and bound.take(0)
    assert not bound.take(0)  # full: a ticket that does not wait is refunded
    bound.give_back()
    assert bound.take(0)
    assert not bound.take(0)
    bound.give_back()
    bound.give_back()
    assert bound.take(0) and bound.take(0) and not bound.take(0)


def test_a_sender_waiting_for_room_gets_it_when_a_slot_is_given_back() -> None:
    bound = InboxBound(1)
    assert bound.take(0)
    outcome: list[bool] = []
    sender = threading.Thread(target=lambda: outcome.append(bound.take(30.0)))
    sender.start()
    wait_until(lambda: bound.waiters == 1, what="the sender waits")
    bound.give_back()
    sender.join()
    assert outcome == [True] and not bound.take(0)


def test_the_writers_inbox_hands_rows_over_in_order_and_stops_at_a_request() -> None:
    inbox = RowInbox(100)
    rows = [[i] for i in range(8)]
    request = object()
    for row in rows[:5]:
        inbox.put(row)
    inbox.put(request)
    inbox.put(Batch(rows[5:]))
    taken: list[object] = []
    assert inbox.take_rows(taken, 3) is None and taken == rows[:3]
    inbox.put([99])  # arrives after what was left: comes after it
    assert inbox.take_rows(taken, 100) is request and taken == rows[:5]
    assert inbox.get() == Batch(rows[5:])
    assert inbox.get() == [99]
    assert inbox.statistics()["rows_waiting"] == 0


def test_a_commit_of_many_rows_in_several_statements_keeps_order_and_chain(tmp_path: Path) -> None:
    from actorlog.events import GaugeSet

    path = tmp_path / "log.db"
    with EventStore(path) as store:
        store.append_many([GaugeSet(name="g", value=float(i)) for i in range(1234)])
        store.flush()
        values = [r.event.value for r in store.events(kinds="gauge.set")]
        assert values == [float(i) for i in range(1234)]
        assert store.verify().ok


def test_correlation_ids_are_16_hex_digits_and_distinct() -> None:
    ids = {new_correlation() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_a_referring_field_filled_at_commit_reads_as_the_whole_event_encoded_with_it(tmp_path: Path) -> None:
    import msgspec

    from actorlog.events import FailureAssessed, FailureRaised, MessageReceived, RecoveryDecided

    with EventStore(tmp_path / "log.db") as store:
        # a nested key of the same name, and the key's text inside a string, are not the field
        received = MessageReceived(recipient="r", sender="s", message=msgspec.Raw(b'{"trigger_seq":null}'))
        first = store.append(received, actor="r")
        raised = FailureRaised(plugin="r", exc_type="x", message='"trigger_seq":null', traceback="t\n")
        second = store.append(raised, actor="r", refs={"trigger_seq": first})
        assessed = FailureAssessed(plugin="r", exc_type="x", message="m", severity="low", failed_at=1.5)
        decided = RecoveryDecided(plugin="r", action="continue")
        store.append_together([(assessed, {"failure_seq": second}), (decided, {"failure_seq": second})], actor="errors")
        store.flush()
        payloads = [row[0] for row in store.db.execute("SELECT payload FROM events ORDER BY seq").fetchall()]
        expected = [
            msgspec.json.encode(received),
            msgspec.json.encode(msgspec.structs.replace(raised, trigger_seq=first.seq)),
            msgspec.json.encode(msgspec.structs.replace(assessed, failure_seq=second.seq)),
            msgspec.json.encode(msgspec.structs.replace(decided, failure_seq=second.seq)),
        ]
        assert payloads[-4:] == [payload.decode() for payload in expected]
        assert store.verify().ok


def test_an_event_redacted_again_after_a_secret_is_remembered_has_it_masked() -> None:
    from actorlog.actors.redaction import redact_event, remember_secret
    from actorlog.events import FailureRaised

    secret = "fast-path-secret-" + new_correlation()
    event = FailureRaised(plugin="p", exc_type="x", message=f"failed with {secret}", traceback="")
    once = redact_event(event)
    assert redact_event(once) is once and secret in once.message  # not known yet: nothing to mask
    remember_secret(secret)
    again = redact_event(once)
    assert secret not in again.message and "***" in again.message
