"""The emulator's pages and log show times in the zone it is started with, named (the site starts it in
the shop's zone, so both speak one clock)."""

import datetime
import logging
import zoneinfo

from xero_emulator import __main__ as emulator_main
from xero_emulator import page


def test_pages_show_times_in_the_zone_given_and_name_it(monkeypatch):
    monkeypatch.setattr(page, "DISPLAY_ZONE", zoneinfo.ZoneInfo("Pacific/Auckland"))
    moment = datetime.datetime(2026, 12, 2, 8, 11, tzinfo=datetime.UTC)
    assert page._when(moment) == "2026-12-02 21:11:00 NZDT"


def test_the_log_names_its_zone():
    formatter = emulator_main._ZonedFormatter("%(asctime)s %(message)s", zone=zoneinfo.ZoneInfo("Pacific/Auckland"))
    record = logging.LogRecord("xero_emulator", logging.INFO, __file__, 1, "hello", None, None)
    record.created = datetime.datetime(2026, 12, 2, 8, 11, tzinfo=datetime.UTC).timestamp()
    record.msecs = 0
    assert formatter.format(record) == "2026-12-02 21:11:00,000 NZDT hello"
