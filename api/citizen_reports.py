"""Citizens' reports (Open311 requests): checking what an app sends, matching it to a streetlight and
a detected fault, folding a device's duplicates, and what the report's status and notes say."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.geo import haversine_m, valid_position
from api.open311_format import Open311Error
from api.open311_services import BY_CODE, POLE_ID, Service
from wire.topics import TopicError, validate_identifier

MATCH_RADIUS_M = 50.0
"""How far from a reported position a streetlight may be to be the one reported."""
FOLD_WINDOW = timedelta(hours=24)
"""A device's second report of the same problem within this time is folded into the first."""
LATE_FAULT_WINDOW = timedelta(hours=24)
"""A fault detected this long after a report (of a matched streetlight) still explains it."""

MAX_DESCRIPTION = 4000  # characters, as Open311 GeoReport v2 says
MAX_FIELD = {"address_string": 500, "address_id": 100, "pole_id": 100, "email": 254,
             "first_name": 100, "last_name": 100, "phone": 40, "device_id": 100,
             "account_id": 100, "media_url": 2048, "jurisdiction_id": 64, "service_code": 40}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Report:
    """A checked report, as the app sent it."""

    jurisdiction_id: str
    service: Service
    lat: float | None = None
    lon: float | None = None
    address_string: str | None = None
    pole_id: str | None = None
    description: str = ""
    media_url: str | None = None
    device_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None

    @property
    def has_contact(self) -> bool:
        return any((self.email, self.first_name, self.last_name, self.phone))


def _text(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _CONTROL.search(value):
        raise Open311Error(400, f"{name} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Open311Error(400, f"{name} is not valid text") from None
    limit = MAX_DESCRIPTION if name == "description" else MAX_FIELD.get(name, 200)
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value


def _coordinate(fields: Mapping[str, str], name: str) -> float | None:
    raw = _text(fields, name)
    if raw is None:
        return None
    if not _NUMBER.match(raw):
        raise Open311Error(400, f"{name} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise Open311Error(400, f"{name} is not a finite number")
    return value


def parse_report(fields: Mapping[str, str]) -> Report:
    """Check an Open311 POST /requests body (already decoded to single string values; attributes
    as `attribute[code]`). Raises Open311Error with the reason the app should show."""
    jurisdiction = _text(fields, "jurisdiction_id")
    if jurisdiction is None:
        raise Open311Error(400, "jurisdiction_id was not provided")
    if not is_tenant_id(jurisdiction):
        raise Open311Error(404, "jurisdiction_id not found")
    code = _text(fields, "service_code")
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    service = BY_CODE.get(code)
    if service is None:
        raise Open311Error(400, "service_code not found: one of " + ", ".join(BY_CODE))
    lat, lon = _coordinate(fields, "lat"), _coordinate(fields, "long")
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long go together")
    if lat is not None and lon is not None and not valid_position(lat, lon):
        raise Open311Error(400, "lat must lie in [-90, 90] and long in [-180, 180] (WGS 84 degrees)")
    pole = _text(fields, f"attribute[{POLE_ID.code}]")
    address = _text(fields, "address_string")
    if lat is None and pole is None and address is None:
        raise Open311Error(400, "a location is required: lat and long, address_string or "
                               f"attribute[{POLE_ID.code}]")
    media = _text(fields, "media_url")
    if media is not None and not re.match(r"^https?://[^\s]+$", media):
        raise Open311Error(400, "media_url must be an http or https URL")
    email = _text(fields, "email")
    if email is not None and not re.match(r"^[^@\s]+@[^@\s]+$", email):
        raise Open311Error(400, "email is not an e-mail address")
    return Report(
        jurisdiction_id=jurisdiction, service=service, lat=lat, lon=lon, address_string=address,
        pole_id=pole, description=_text(fields, "description") or "", media_url=media,
        device_id=_text(fields, "device_id"), email=email,
        first_name=_text(fields, "first_name"), last_name=_text(fields, "last_name"),
        phone=_text(fields, "phone"),
    )


def is_tenant_id(value: str) -> bool:
    """True when `value` can name a tenant (wire.topics' identifier rule)."""
    try:
        validate_identifier(value, "tenant")
    except TopicError:
        return False
    return True


def reporter_key(device_id: str | None, client: str) -> str:
    """A pseudonymous key of who reported: the app's device id if it sent one, else the client's
    address; only its SHA-256 is kept, to fold duplicates."""
    source = f"device:{device_id}" if device_id else f"client:{client}"
    return hashlib.sha256(source.encode()).hexdigest()


# ----------------------------------------------------------------- matching


@dataclass(frozen=True)
class Candidate:
    """A streetlight near the report (or on the reported pole)."""

    controller_id: str
    idx: int
    lat: float | None
    lon: float | None
    cabinet_id: str | None = None


@dataclass(frozen=True)
class OpenFault:
    """A fault open now on a candidate's luminaire, its controller or its cabinet."""

    id: int
    kind: str
    raised_at: datetime
    controller_id: str | None = None
    luminaire_idx: int | None = None
    cabinet_id: str | None = None

    @property
    def scope(self) -> str:
        if self.controller_id is None:
            return "cabinet"
        return "controller" if self.luminaire_idx is None else "luminaire"

    def concerns(self, c: Candidate) -> bool:
        """True when this fault is on the candidate's luminaire, controller or cabinet."""
        if self.controller_id is None:
            return self.cabinet_id is not None and self.cabinet_id == c.cabinet_id
        if self.controller_id != c.controller_id:
            return False
        return self.luminaire_idx is None or self.luminaire_idx == c.idx


@dataclass(frozen=True)
class Match:
    """The streetlight a report is about, how far it is from the reported position, and the
    detected fault that explains the report, if any."""

    candidate: Candidate
    distance_m: float | None
    fault: OpenFault | None


_SCOPE_ORDER = {"luminaire": 0, "controller": 1, "cabinet": 2}


def explaining_fault(service: Service, candidate: Candidate,
                     faults: Sequence[OpenFault]) -> OpenFault | None:
    """The fault that explains a report of `service` on `candidate`: the closest device first (the
    luminaire, then its controller, then its cabinet), then the earliest raised."""
    keys = service.fault_keys
    relevant = [f for f in faults if (f.kind, f.scope) in keys and f.concerns(candidate)]
    if not relevant:
        return None
    return min(relevant, key=lambda f: (_SCOPE_ORDER[f.scope], f.raised_at, f.id))


def match_by_position(service: Service, lat: float, lon: float, candidates: Sequence[Candidate],
                      faults: Sequence[OpenFault],
                      radius_m: float = MATCH_RADIUS_M) -> Match | None:
    """The streetlight a report at (lat, lon) is about: among those within radius_m, the nearest
    one with a fault that explains the report (a phone's position is often 10-30 m off, and the
    dark lamp is the one reported), else the nearest one; None when none is within radius_m."""
    near: list[tuple[float, Candidate]] = []
    for c in candidates:
        if c.lat is None or c.lon is None:
            continue
        d = haversine_m(lat, lon, c.lat, c.lon)
        if d <= radius_m:
            near.append((d, c))
    if not near:
        return None
    near.sort(key=lambda dc: (dc[0], dc[1].controller_id, dc[1].idx))
    for d, c in near:
        fault = explaining_fault(service, c, faults)
        if fault is not None:
            return Match(c, d, fault)
    d, c = near[0]
    return Match(c, d, None)


def match_by_pole(service: Service, candidates: Sequence[Candidate],
                  faults: Sequence[OpenFault]) -> Match | None:
    """The streetlight of a reported pole: the first (by luminaire index) with a fault that
    explains the report, else the first; None when the pole has no streetlight."""
    ordered = sorted(candidates, key=lambda c: (c.controller_id, c.idx))
    for c in ordered:
        fault = explaining_fault(service, c, faults)
        if fault is not None:
            return Match(c, None, fault)
    return Match(ordered[0], None, None) if ordered else None


# ----------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class Earlier:
    """A report the same reporter made recently, still open."""

    id: int
    service_code: str
    requested_at: datetime
    controller_id: str | None
    luminaire_idx: int | None
    lat: float | None
    lon: float | None
    pole_id: str | None
    address_string: str | None


def duplicate_of(report: Report, match: Match | None, earlier: Sequence[Earlier],
                 now: datetime) -> int | None:
    """The id of the reporter's earlier open report of the same problem (same service, same
    streetlight, or for unmatched reports the same pole, address or place within the match radius),
    made within FOLD_WINDOW; None when this report is new."""
    for e in sorted(earlier, key=lambda x: x.requested_at):
        if e.service_code != report.service.code or now - e.requested_at > FOLD_WINDOW:
            continue
        if match is not None:
            if (e.controller_id, e.luminaire_idx) == (match.candidate.controller_id,
                                                      match.candidate.idx):
                return e.id
            continue
        if e.controller_id is not None:
            continue
        if report.pole_id and e.pole_id == report.pole_id:
            return e.id
        if report.address_string and e.address_string == report.address_string:
            return e.id
        if (report.lat is not None and report.lon is not None and e.lat is not None
                and e.lon is not None
                and haversine_m(report.lat, report.lon, e.lat, e.lon) <= MATCH_RADIUS_M):
            return e.id
    return None


# ----------------------------------------------------------------- status


@dataclass(frozen=True)
class Linked:
    """What a stored report is linked to when it is read."""

    streetlight: str | None  # the matched streetlight's public id
    distance_m: float | None
    fault_kind: str | None
    fault_raised_at: datetime | None
    fault_cleared_at: datetime | None
    without_position: bool


def _clock(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def status_and_notes(link: Linked, requested_at: datetime,
                     radius_m: float = MATCH_RADIUS_M) -> tuple[str, str, datetime]:
    """(status, status_notes, updated_datetime) of a report: closed when the fault that explains
    it has cleared, open otherwise."""
    if link.streetlight is None:
        if link.without_position:
            return ("open", "No position given, and no streetlight on the pole or at the address "
                            "given: a crew will look.", requested_at)
        return ("open", f"No streetlight within {radius_m:.0f} m of this position: a crew will "
                        "look.", requested_at)
    where = f"Matched to streetlight {link.streetlight}"
    if link.distance_m is not None:
        where += f" ({link.distance_m:.0f} m away)"
    if link.fault_kind is None or link.fault_raised_at is None:
        return ("open", f"{where}; no fault detected on it yet: it will be inspected.",
                requested_at)
    detected = f"{where}; fault {link.fault_kind} detected at {_clock(link.fault_raised_at)}"
    if link.fault_cleared_at is not None:
        return ("closed", f"{detected}, cleared at {_clock(link.fault_cleared_at)}.",
                max(link.fault_cleared_at, requested_at))
    return ("open", f"{detected}; repair pending.", max(link.fault_raised_at, requested_at))
