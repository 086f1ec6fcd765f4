"""The admin's date-and-time formats with the time zone named: `Dec. 2, 2026, 10:11 a.m. NZDT`.

Every time on the site is shown in the shop's zone (TIME_ZONE, from SHOP_TIME_ZONE); naming it keeps a
page, a log line (config/logs.py) and Xero's own times readable side by side. Dates and times of day
alone are Django's own formats ("en", which en-nz falls back to).
"""

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
