"""Device profiles: register maps as JSON data files, loaded and validated with pydantic."""

from __future__ import annotations

import json
from enum import Enum
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ProfileError

PROFILES_DIR = Path(__file__).with_name("profiles")


class RegisterFunction(str, Enum):
    """Which Modbus table a register lives in (and so which read function reads it)."""

    INPUT = "input"  # function code 4
    HOLDING = "holding"  # function code 3

    @property
    def read_function_code(self) -> int:
        return 4 if self is RegisterFunction.INPUT else 3


class RegisterType(str, Enum):
    """Value types a register (or a run of registers) holds."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def word_count(self) -> int:
        return _WORD_COUNT[self]

    @property
    def is_float(self) -> bool:
        return self in (RegisterType.FLOAT32, RegisterType.FLOAT64)


_WORD_COUNT = {
    RegisterType.UINT16: 1,
    RegisterType.INT16: 1,
    RegisterType.UINT32: 2,
    RegisterType.INT32: 2,
    RegisterType.FLOAT32: 2,
    RegisterType.FLOAT64: 4,
}

WordOrder = Literal["big", "little"]


class RegisterSpec(BaseModel):
    """One value in a device's register map.

    ``address`` is the 0-based protocol address (what goes on the wire), not the
    1-based "30001" reference of manuals. The engineering value is ``raw * scale``.
    ``word_order`` "big" puts the most significant 16-bit word first; bytes inside a
    word are always big-endian, as Modbus says.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    function: RegisterFunction
    address: int = Field(ge=0, le=0xFFFF)
    type: RegisterType
    scale: float = 1.0
    word_order: WordOrder = "big"
    unit: str = ""
    description: str = ""

    @field_validator("scale")
    @classmethod
    def _scale_not_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("scale must not be 0")
        return value

    @model_validator(mode="after")
    def _fits_address_space(self) -> RegisterSpec:
        if self.address + self.word_count > 0x10000:
            raise ValueError(f"{self.name}: address {self.address} + {self.word_count} words > 65536")
        return self

    @property
    def word_count(self) -> int:
        return self.type.word_count

    @property
    def end(self) -> int:
        """First address after this register's words."""
        return self.address + self.word_count


class DeviceProfile(BaseModel):
    """A device family's register map and how to read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    manufacturer: str
    model: str
    default_device_id: int = Field(default=1, ge=0, le=247)
    #: Largest run of unmapped registers a single read may span (0: never read unmapped
    #: addresses). Only raise it for devices known to answer reads across gaps.
    max_read_gap: int = Field(default=0, ge=0, le=124)
    #: Most registers in one read request (Modbus allows 125).
    max_registers_per_read: int = Field(default=125, ge=1, le=125)
    notes: str = ""
    registers: tuple[RegisterSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique_and_no_overlap(self) -> DeviceProfile:
        names = [r.name for r in self.registers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate register names: {duplicates}")
        for function in RegisterFunction:
            regs = sorted((r for r in self.registers if r.function is function), key=lambda r: r.address)
            for before, after in pairwise(regs):
                if after.address < before.end:
                    raise ValueError(
                        f"{function.value} registers {before.name}@{before.address} and "
                        f"{after.name}@{after.address} overlap"
                    )
        too_wide = [r.name for r in self.registers if r.word_count > self.max_registers_per_read]
        if too_wide:
            raise ValueError(f"registers wider than max_registers_per_read: {too_wide}")
        return self

    def register(self, name: str) -> RegisterSpec:
        """The register called ``name``; KeyError if the profile has none."""
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"profile {self.id} has no register {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.registers)


def parse_profile(data: dict | str | bytes) -> DeviceProfile:
    """Validate a profile from its JSON text or already-parsed dict."""
    try:
        if isinstance(data, (str, bytes)):
            return DeviceProfile.model_validate_json(data)
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"invalid device profile: {exc}") from exc


def available_profiles() -> list[str]:
    """Ids of the profiles shipped in ``hardware/modbus/profiles``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


@lru_cache(maxsize=32)
def _load_path(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"profile {path} is not JSON: {exc}") from exc
    return parse_profile(text)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a shipped profile by id (``"eastron_sdm630"``) or any profile file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILES_DIR / f"{name_or_path}.json"
    return _load_path(path.resolve())
