"""The agent's side of a receipt, with its real outbox and no broker: a receipt on its topic
releases exactly what it names; a malformed one, or one naming another controller, another boot
or other readings, releases nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge_agent.clock import RealClock
from edge_agent.link import Link
from edge_agent.settings import AgentSettings
from edge_agent.store_forward import Outbox
from wire import messages
from wire.codec import encode_luminaire
from wire.receipts import MessageKey, key_of, receipts_for
from wire.records import LUMINAIRE_DTYPE
from wire.topics import Kind, topic

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ME, OTHER, TENANT = "ctl-me", "ctl-other", "ixelles"
BOOT = 1_700_000_000_000


def _link(tmp_path: Path) -> Link:
    settings = AgentSettings(controller_id=ME, tenant=TENANT, data_dir=tmp_path)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    return Link(settings, outbox, RealClock(), lambda online, reason: b"", lambda t, p: None)


def _receipt(controller: str, keys: list[MessageKey]) -> bytes:
    return messages.dumps(receipts_for(controller, keys, [], NOW)[0])


@pytest.fixture
def link(tmp_path: Path) -> Link:
    link = _link(tmp_path)
    records = np.zeros(4, dtype=LUMINAIRE_DTYPE)
    name = topic(TENANT, ME, Kind.TELEMETRY)
    for first in (0, 4, 8):  # three readings messages, sent and PUBACKed
        link.outbox.put(name, encode_luminaire(BOOT, first, records))
    for m in link.outbox.peek(10):
        link.confirm.published(m.id, key_of(Kind.TELEMETRY, m.payload))
        assert link.confirm.puback(m.id, 0.0).ids == []
    yield link
    link.outbox.close()


def _held(link: Link) -> int:
    return link.outbox.stats().messages


def test_a_receipt_releases_exactly_what_it_names(link: Link) -> None:
    released = link.on_receipt(_receipt(ME, [MessageKey(messages.Stream.LUMINAIRE, BOOT, 0, 8)]))
    assert released.stored == 2 and _held(link) == 1


@pytest.mark.parametrize("payload", [
    b"", b"not json", b"{}", b'{"v":1,"controller":"ctl-me","time":"2026-01-01T00:00:00Z",'
    b'"stored":[{"stream":"luminaire","boot_id":1700000000000,"first_seq":0,"last_seq":11,"x":1}]}',
    _receipt(OTHER, [MessageKey(messages.Stream.LUMINAIRE, BOOT, 0, 12)]),  # another controller's
    _receipt(ME, [MessageKey(messages.Stream.LUMINAIRE, BOOT + 1, 0, 12)]),  # another boot
    _receipt(ME, [MessageKey(messages.Stream.SENSOR, BOOT, 0, 12)]),  # another stream
    _receipt(ME, [MessageKey(messages.Stream.LUMINAIRE, BOOT, f, 3) for f in (0, 4, 8)]),  # 3 of 4
])
def test_a_forged_or_malformed_receipt_releases_nothing(link: Link, payload: bytes) -> None:
    before = link.receipts_refused
    released = link.on_receipt(payload)
    assert released.ids == [] and _held(link) == 3
    if b"ctl-other" in payload or not payload.startswith(b'{"v":1,"id"'):
        assert link.receipts_refused == before + 1


def test_an_unconfirmed_reading_is_sent_again_after_its_timeout(tmp_path: Path) -> None:
    link = _link(tmp_path / "x")
    link.outbox.put(topic(TENANT, ME, Kind.TELEMETRY),
                    encode_luminaire(BOOT, 0, np.zeros(1, dtype=LUMINAIRE_DTYPE)))
    (m,) = link.outbox.peek(1)
    link.confirm.published(m.id, key_of(Kind.TELEMETRY, m.payload))
    link.confirm.puback(m.id, 0.0)
    due = link.confirm.next_due()
    assert due is not None and 30.0 <= due <= 60.0  # the default first timeout, jittered
    assert link.confirm.expire(due) == [m.id]
    assert link.confirm.to_send(8)[0] == [m.id]
    link.outbox.close()
