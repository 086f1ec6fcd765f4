"""Dates and JSON the way Xero writes and reads them.

Xero serialises timestamps as MS-JSON dates (``/Date(1439434356790+0000)/``) and money as JSON numbers
that keep their scale (``115.00``). ``json`` cannot write a Decimal as a number without going through
float, so :func:`dumps` is a small encoder of its own; money never becomes a float here.
"""

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def ms_datetime(moment: datetime) -> str:
    """UpdatedDateUTC style: ``/Date(1439434356790+0000)/``."""
    return f"/Date({_millis(moment)}+0000)/"


def ms_date(day: date) -> str:
    """Invoice/payment Date style: midnight UTC of the day, ``/Date(1767312000000+0000)/``."""
    return ms_datetime(datetime.combine(day, time(), UTC))


def envelope_datetime(moment: datetime) -> str:
    """The response envelope's DateTimeUTC has no offset: ``/Date(1439434356790)/``."""
    return f"/Date({_millis(moment)})/"


def date_string(day: date) -> str:
    """Xero's companion ``DateString``: ``2026-01-02T00:00:00``."""
    return f"{day.isoformat()}T00:00:00"


def parse_ms_date(value: str) -> datetime | None:
    """``/Date(ms)/`` or ``/Date(ms+hhmm)/`` -> aware UTC datetime (the ms count is always UTC)."""
    match = _MS_DATE.match(value.strip())
    if not match:
        return None
    return _EPOCH + timedelta(milliseconds=int(match.group(1)))


def parse_date(value: object) -> date:
    """Accept what clients send for a date: ``YYYY-MM-DD``, an ISO datetime or ``/Date(ms)/``.

    xero-python sends ``/Date(ms)/`` for midnight UTC of the date (serializer.serialize_date_ms).
    Raises ValueError on anything else.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{value}' is not a valid date")
    text = value.strip()
    moment = parse_ms_date(text)
    if moment is not None:
        return moment.date()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid date") from None
    # A datetime with an offset names a local calendar day; keep that day, as Xero's UI would.
    return parsed.date()


def parse_http_datetime(value: str) -> datetime | None:
    """An If-Modified-Since value: ISO 8601 (what xero-python sends via ``isoformat()``) or RFC 1123.

    Naive values are UTC. Returns None for an unparseable value, which HTTP says to ignore.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def loads(text: str | bytes) -> object:
    """Parse JSON keeping every non-integer number exact (Decimal, never float)."""
    return json.loads(text, parse_float=Decimal)


def dumps(value: object) -> str:
    """Encode JSON with Decimals written exactly as they are scaled (``Decimal('115.00')`` -> ``115.00``)."""
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts)


def _encode(value: object, out) -> None:
    if isinstance(value, Decimal):
        out(format(value, "f"))
    elif isinstance(value, dict):
        out("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out(",")
            out(json.dumps(str(key)))
            out(":")
            _encode(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _encode(item, out)
        out("]")
    elif value is None or isinstance(value, str | bool | int | float):
        out(json.dumps(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as Xero JSON")


# Persistence: the state file must round-trip Decimal, date and datetime exactly, so those are tagged.


def to_storable(value: object) -> object:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {key: to_storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_storable(item) for item in value]
    return value


def from_storable(value: object) -> object:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, raw),) = value.items()
            if tag == "$decimal":
                return Decimal(raw)
            if tag == "$datetime":
                return datetime.fromisoformat(raw)
            if tag == "$date":
                return date.fromisoformat(raw)
        return {key: from_storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_storable(item) for item in value]
    return value
