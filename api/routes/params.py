"""Path and query parameters shared by the routes, bounded so no value reaches SQL unchecked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query

from api.pagination import DEFAULT_LIMIT, MAX_LIMIT

MAX_ID = (1 << 63) - 1
IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
WORD = r"^[A-Za-z0-9_.:-]{1,64}$"

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
IdentPath = Annotated[str, Path(pattern=IDENT)]
Ean = Annotated[str, Path(pattern=r"^[0-9]{18}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$")]
IdentQuery = Annotated[str | None, Query(pattern=IDENT)]
WordQuery = Annotated[str | None, Query(pattern=WORD)]
From = Annotated[datetime | None, Query(alias="from")]
To = Annotated[datetime | None, Query(alias="to")]
DEFAULT = DEFAULT_LIMIT
