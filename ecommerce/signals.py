"""Signals the shop sends for writes Django's model signals do not see.

`sale_lines_replaced`
    Sent as ``sale_lines_replaced.send(sender=Sale, sale=sale)`` by `services.sale_create` and
    `services.sale_update` each time they write a sale's lines, after the write and inside the same
    transaction. The lines are written in bulk (one delete of the removed lines, one `bulk_update` of the
    kept ones, one `bulk_create` of the new ones), and bulk writes send no `post_save` per line, so a
    receiver that must know when a sale's lines changed listens here rather than to `SaleLine`'s
    `post_save`. `sale` is the saved sale; read its lines from the database (`sale.lines.all()`) if
    needed. Sent at most once per service call; not sent when a save leaves the lines as they were.
    Receivers run inside the service's transaction, so a rolled-back save leaves nothing of theirs
    either; they must not do I/O (queue work with `transaction.on_commit` instead).

The shop sends these and imports nothing of their receivers: the Xero sync connects its own.
"""

import django.dispatch

sale_lines_replaced = django.dispatch.Signal()
