"""The words people read for what a sync did: one wording for the admin, the command line and the logs.

Counts arrive keyed by RecordKind members or by plain strings ("contact", "sale", ...), often both in one
Counter; they are read as a person reads them: "2 contacts, 1 sale", in the order a sync takes them.
"""

from collections.abc import Mapping

COUNTED_ORDER = ["contact", "sale", "invoice", "receipt", "payment"]  # the order a sync takes them in


def kind_name(kind) -> str:
    """A record kind as a word: RecordKind.CONTACT and "contact" both read "contact"."""
    return str(getattr(kind, "value", kind))


def kind_plural(kind, count: int = 2) -> str:
    name = kind_name(kind)
    return name if count == 1 else f"{name}s"


def counted(counts: Mapping | None, *, nothing: str = "nothing") -> str:
    """{RecordKind.CONTACT: 1, "contact": 1, "sale": 1} as "2 contacts, 1 sale"; `nothing` when empty."""
    totals: dict[str, int] = {}
    for kind, count in (counts or {}).items():
        totals[kind_name(kind)] = totals.get(kind_name(kind), 0) + int(count or 0)
    kinds = sorted(totals, key=lambda kind: (COUNTED_ORDER.index(kind) if kind in COUNTED_ORDER else 99, kind))
    return ", ".join(f"{totals[kind]} {kind_plural(kind, totals[kind])}" for kind in kinds if totals[kind]) or nothing
