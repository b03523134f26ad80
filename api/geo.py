"""Distances on the Earth and the bounding box of a search radius (no PostGIS needed)."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
"""The mean Earth radius (IUGG), in metres."""


def valid_position(lat: float, lon: float) -> bool:
    """True for finite WGS 84 coordinates in range."""
    return (math.isfinite(lat) and math.isfinite(lon)
            and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS 84 positions, in metres (haversine formula)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bbox_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) containing every point within radius_m of (lat, lon).

    Near the poles (or when the box would cross the antimeridian) the longitude range is the
    whole circle, which still contains the disc."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    lat_min, lat_max = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = max(abs(lat_min), abs(lat_max))
    if widest >= 89.0:
        return lat_min, lat_max, -180.0, 180.0
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * math.cos(math.radians(widest))))
    lon_min, lon_max = lon - dlon, lon + dlon
    if lon_min < -180.0 or lon_max > 180.0:
        return lat_min, lat_max, -180.0, 180.0
    return lat_min, lat_max, lon_min, lon_max
