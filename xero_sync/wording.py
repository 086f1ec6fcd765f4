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


# --- Who said it, and which record -------------------------------------------------------------------
# A record's last error is either Xero's own words (a validation error Xero sent back) or this site's check
# before sending (a tax code not mapped, a contact not in Xero yet...): staff are told which, since "Xero
# says" over the site's own words sends them looking in Xero for a problem that is on the website. The link
# records who said it where the error is written (XeroLink.error_by), never guessed from the words.

XERO_SAYS, SITE_SAYS = "Xero says", "This site's check (not sent to Xero)"


def said_by(error_by: str) -> str:
    """Who a record's error comes from (its link's error_by), as a label for it. An error stored before
    links recorded it, or by a writer that does not say, reads as Xero's, as it always did."""
    from .models import XeroLink

    return SITE_SAYS if error_by == XeroLink.ErrorBy.SITE else XERO_SAYS


def record_names(links) -> dict[int, str]:
    """Link id -> the record as staff know it: a sale's or refund's number (S-000050, CN-000003), a
    receipt's key in Xero (WEB-R000017), a contact's name. A few queries for any number of links (one per
    kind), never one per link."""
    from ecommerce.models import Contact, Sale
    from ecommerce.models import Refund as RefundModel

    from .mappers import contact_number, receipt_key
    from .models import RecordKind

    links = list(links)
    if not links:
        return {}
    # Each kind is asked once whether or not the page has one (an id no record has stands in), so a page of
    # links costs the same queries whatever mix of kinds it holds.
    wanted: dict[str, set[int]] = {str(kind): {0} for kind in (RecordKind.SALE, RecordKind.REFUND, RecordKind.CONTACT)}
    refund_parts = {str(RecordKind.ALLOCATION): "allocation of", str(RecordKind.REFUND_PAYMENT): "payment of"}
    for link in links:
        # a refund's allocation and payment are named by the refund they belong to
        kind = str(RecordKind.REFUND) if str(link.kind) in refund_parts else str(link.kind)
        wanted.setdefault(kind, {0}).add(link.local_id)
    sales = dict(Sale.objects.filter(pk__in=wanted[RecordKind.SALE]).values_list("pk", "number"))
    refunds = dict(RefundModel.objects.filter(pk__in=wanted[RecordKind.REFUND]).values_list("pk", "number"))
    contacts = {contact.pk: contact.display_name for contact in Contact.objects.filter(
        pk__in=wanted[RecordKind.CONTACT]).only("first_name", "last_name", "company_name")}
    names = {}
    for link in links:
        kind = str(link.kind)
        if kind == RecordKind.SALE:
            name = sales.get(link.local_id)
        elif kind == RecordKind.REFUND:
            name = refunds.get(link.local_id)
        elif kind in refund_parts:
            name = refunds.get(link.local_id) and f"{refund_parts[kind].capitalize()} {refunds[link.local_id]}"
        elif kind == RecordKind.RECEIPT:
            name = receipt_key(link.local_id)
        elif kind == RecordKind.CONTACT:
            name = contacts.get(link.local_id)
            name = f"{name} ({contact_number(link.local_id)})" if name else contact_number(link.local_id)
        else:
            name = None
        names[link.pk] = name or link.xero_key or f"{link.get_kind_display()} (deleted on the website)"
    return names


def problem_rows(links) -> list[dict]:
    """The settings page's "Current errors": each record by name, a link to its page, who said what, and
    what to do about it."""
    from django.urls import NoReverseMatch, reverse

    from .services.links import link_advice

    pages = {"contact": "admin:ecommerce_contact_change", "sale": "admin:ecommerce_sale_change",
             "receipt": "admin:ecommerce_receipt_change", "refund": "admin:ecommerce_refund_change"}
    links = list(links)
    names = record_names(links)
    rows = []
    for link in links:
        try:
            url = reverse(pages[str(link.kind)], args=[link.local_id])
        except (KeyError, NoReverseMatch):
            url = None
        rows.append({"link": link, "kind": link.get_kind_display(), "name": names[link.pk], "url": url,
                     "said_by": said_by(link.error_by), "words": link.last_error, "advice": link_advice(link)})
    return rows
