"""When a batch closes: on message count, record count, or age of its first message (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from wire.records import HEADER_SIZE, LUMINAIRE_DTYPE


@dataclass(frozen=True)
class BatchPolicy:
    max_messages: int = 400
    max_records: int = 50_000
    max_wait_s: float = 0.2

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_records < 1 or self.max_wait_s <= 0:
            raise ValueError("batch limits must be positive")

    def full(self, messages: int, records: int) -> bool:
        return messages >= self.max_messages or records >= self.max_records

    def due(self, messages: int, records: int, age_s: float) -> bool:
        """True when a batch of this size and age must be written now."""
        if messages == 0:
            return False
        return self.full(messages, records) or age_s >= self.max_wait_s

    def wait_s(self, messages: int, age_s: float) -> float:
        """How long to wait for more messages before the batch is due."""
        if messages == 0:
            return self.max_wait_s
        return max(0.0, self.max_wait_s - age_s)


def estimated_records(payload_len: int, header: int = HEADER_SIZE,
                      record: int = LUMINAIRE_DTYPE.itemsize) -> int:
    """Records a telemetry payload of this length carries at most (for the size limit)."""
    return max(1, (payload_len - header) // record) if payload_len > header else 1
