"""A plugin's inbox is bounded: when it is full, senders wait (back-pressure) instead of
growing memory, and every message still arrives."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from actor_helpers import Append, Block, Worker, read_log, share, wait_until

from actorlog.actors import ActorSystem, RegistrationError


def test_a_full_inbox_holds_the_sender_until_the_plugin_takes_a_message(tmp_path: Path) -> None:
    release, sink = threading.Event(), []
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker, max_inbox=2)
        system.start()
        system.tell("worker", Block(key=share(release)))     # taken: handled, holds its slot
        system.tell("worker", Append(sink=share(sink), value=1))  # waiting: the inbox is now full
        sent = threading.Event()

        def third() -> None:
            system.tell("worker", Append(sink=share(sink), value=2))
            sent.set()

        sender = threading.Thread(target=third)
        sender.start()
        assert not sent.wait(0.5), "the third tell should wait for room in the full inbox"
        release.set()
        sender.join(30)
        assert sent.is_set()
        wait_until(lambda: len(sink) == 2, what="both appends handled")
    assert [value for _, value, _ in sink] == [1, 2]
    received = [r for r in read_log(tmp_path / "app.db", kinds=["message.received"])]
    assert len(received) == 3


def test_max_inbox_must_be_positive(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="max_inbox"):
            system.register("worker", Worker, max_inbox=0)
