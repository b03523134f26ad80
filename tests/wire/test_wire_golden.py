"""Golden v1 payloads: bytes and JSON a controller of today sends. A change of the wire shape (a
field moved, renamed, retyped or made mandatory) fails here before it strands deployed firmware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wire import messages
from wire.codec import decode, encode_luminaire, encode_rows, encode_sensor
from wire.records import LUMINAIRE_DTYPE, SENSOR_DTYPE, RecordType

GOLDEN = Path(__file__).with_name("golden")
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def _golden_bytes(name: str) -> bytes:
    return bytes.fromhex((GOLDEN / name).read_text().strip())


def _luminaire_records() -> np.ndarray:
    rows = np.zeros(2, dtype=LUMINAIRE_DTYPE)
    rows[0] = (T0_US, 0, 254, 0, 41.5, 123456.25, 231.0, 0.18, 0.97, 48.5, 3.5, 2, 0)
    rows[1] = (T0_US + 60_000_000, 3, 128, 0x10, 12.25, 9876.5, 229.5, 0.06, 0.91, 37.0, 0.0, 0, 3)
    return rows


def _sensor_records() -> np.ndarray:
    rows = np.zeros(2, dtype=SENSOR_DTYPE)
    rows[0] = (T0_US, 0, 1, 62.5)
    rows[1] = (T0_US, 1, 4, 21.25)
    return rows


def test_luminaire_telemetry_encodes_to_the_golden_bytes() -> None:
    assert encode_luminaire(7, 1000, _luminaire_records()) == _golden_bytes(
        "telemetry_luminaire_v1.hex")


def test_sensor_telemetry_encodes_to_the_golden_bytes() -> None:
    assert encode_sensor(7, 2000, _sensor_records()) == _golden_bytes("telemetry_sensor_v1.hex")


def test_the_vectorised_encoder_gives_the_golden_bytes_row_by_row() -> None:
    """The fleet simulator encodes thousands of messages at once: each row is a golden payload."""
    records = np.stack([_luminaire_records(), _luminaire_records()])
    rows = encode_rows(RecordType.LUMINAIRE, np.array([7, 7]), np.array([1000, 1000]), records)
    golden = _golden_bytes("telemetry_luminaire_v1.hex")
    assert [row.tobytes() for row in rows] == [golden, golden]
    sensors = encode_rows(RecordType.SENSOR, np.array([7]), np.array([2000]),
                          _sensor_records()[None, :])
    assert sensors[0].tobytes() == _golden_bytes("telemetry_sensor_v1.hex")


@pytest.mark.parametrize(("name", "record_type", "first_seq", "expected"), [
    ("telemetry_luminaire_v1.hex", RecordType.LUMINAIRE, 1000, _luminaire_records()),
    ("telemetry_sensor_v1.hex", RecordType.SENSOR, 2000, _sensor_records()),
])
def test_golden_bytes_decode_to_their_records(name: str, record_type: RecordType, first_seq: int,
                                              expected: np.ndarray) -> None:
    decoded = decode(_golden_bytes(name), now_us=T0_US)
    assert decoded.record_type == record_type
    assert (decoded.boot_id, decoded.first_seq) == (7, first_seq)
    assert decoded.records.tobytes() == expected.tobytes()


@pytest.mark.parametrize(("name", "model"), [
    ("event_v1.json", messages.Event),
    ("ack_v1.json", messages.Ack),
    ("state_birth_v1.json", messages.State),
    ("state_will_v1.json", messages.State),
    ("config_v1.json", messages.ControllerConfig),
    ("cmd_set_level_v1.json", messages.Command),
    ("cmd_schedule_v1.json", messages.Command),
    ("cmd_calendar_v1.json", messages.Command),
    ("calendar_v1.json", messages.Calendar),
    ("receipt_v1.json", messages.Receipt),
])
def test_golden_json_parses_and_serialises_unchanged(name: str, model: Any) -> None:
    raw = (GOLDEN / name).read_bytes()
    parsed = messages.loads(model, raw)
    assert json.loads(messages.dumps(parsed)) == json.loads(raw)


def test_the_old_one_profile_schedule_still_decodes_and_means_the_same_calendar() -> None:
    """Agents in the field keep running schedules sent before calendars existed."""
    command = messages.parse_command((GOLDEN / "cmd_schedule_v1.json").read_bytes())
    calendar = messages.Calendar.of_schedule(command.schedule)
    assert calendar.week == ("nightly",) * 7 and calendar.clo
    assert calendar.programs["nightly"].steps == command.schedule.steps
