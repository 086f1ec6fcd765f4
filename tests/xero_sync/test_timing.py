"""Whether a sync is due, as staff's settings decide it: auto-sync on or off, the quiet period and its
cap they choose. (How the outbox works out its due time, retries included, is in test_outbox.py; the beat
tick and the nudge that act on it are in test_sync_tasks.py.)

The clock is ours to control: `sync_is_due(now=...)` and `outbox_due_at(...)` are asked about chosen
moments, and `OutboxEntry.recorded_at` is set explicitly. Nothing here sleeps.
"""

import datetime

import pytest

from tests.xero_sync.outbox_clock import T, change_at, due_at, seconds
from xero_sync.models import OutboxEntry
from xero_sync.services.configuration import sync_settings_update
from xero_sync.services.sync import sync_is_due


@pytest.mark.django_db
def test_nothing_recorded_is_never_due():
    # given an empty outbox
    # then nothing is due, however long we wait
    assert due_at() is None
    assert not sync_is_due(now=T + datetime.timedelta(days=30))


@pytest.mark.django_db
def test_the_quiet_period_and_cap_staff_set_take_effect():
    # given staff set a 30 s quiet period and a 90 s cap on the settings page
    sync_settings_update(debounce_seconds=30, max_wait_seconds=90)
    change_at(T)

    # then a single change is due after 30 s
    assert due_at() == T + seconds(30)
    assert not sync_is_due(now=T + seconds(29))
    assert sync_is_due(now=T + seconds(31))

    # and edits every 20 s are pushed by the 90 s cap
    for step in range(1, 5):
        change_at(T + seconds(20 * step), local_id=step + 1)
    assert due_at() == T + seconds(90)
    assert not sync_is_due(now=T + seconds(89))
    assert sync_is_due(now=T + seconds(90))

    # when staff lengthen the quiet period again
    sync_settings_update(debounce_seconds=300, max_wait_seconds=900)
    # then the same rows wait for the new one (last edit at T+80 s)
    assert due_at() == T + seconds(380)
    assert not sync_is_due(now=T + seconds(379))
    assert sync_is_due(now=T + seconds(381))


@pytest.mark.django_db
def test_with_auto_sync_off_nothing_is_ever_due_and_switching_it_on_makes_it_due():
    # given auto-sync switched off and a change long ago
    sync_settings_update(auto_sync=False)
    change_at(T)

    # then it is never due by itself (the change stays recorded for "Sync now")
    assert not sync_is_due(now=T + seconds(121))
    assert not sync_is_due(now=T + seconds(601))
    assert not sync_is_due(now=T + datetime.timedelta(days=7))
    assert OutboxEntry.objects.count() == 1

    # when auto-sync is switched back on, the waiting change is due at once
    sync_settings_update(auto_sync=True)
    assert sync_is_due(now=T + datetime.timedelta(days=7))
