"""``python -m xero_emulator --port 8765 [--host 127.0.0.1] [--state FILE] [--time-zone ZONE]``: the
emulator as a demo server."""

import argparse
import logging
import zoneinfo
from datetime import datetime

from . import page
from .emulator import Emulator
from .identity import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from .server import make_server


class _ZonedFormatter(logging.Formatter):
    """Log times in one named zone (the shop's, when the site starts it), like the site's own log."""

    def __init__(self, fmt: str, *, zone: zoneinfo.ZoneInfo):
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        moment = datetime.fromtimestamp(record.created, self.zone)
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d} {moment:%Z}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xero_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (keep it loopback)")
    parser.add_argument("--state", help="JSON file the organisations and tokens are loaded from and saved to")
    parser.add_argument("--day-limit", type=int, default=5000, help="calls per organisation per day")
    parser.add_argument("--no-limits", action="store_true", help="switch rate limits off")
    parser.add_argument("--time-zone", type=zoneinfo.ZoneInfo, default=zoneinfo.ZoneInfo("UTC"), metavar="ZONE",
                        help="the zone its log and pages show times in, named (e.g. Pacific/Auckland; default UTC)."
                             " Xero's own fields (UpdatedDateUTC) stay UTC, as Xero sends them")
    args = parser.parse_args(argv)

    page.DISPLAY_ZONE = args.time_zone
    handler = logging.StreamHandler()
    handler.setFormatter(_ZonedFormatter("%(asctime)s %(name)s %(message)s", zone=args.time_zone))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    emulator = Emulator(state_file=args.state, per_day=args.day_limit, limits_enabled=not args.no_limits)
    server = make_server(emulator, args.host, args.port)
    print(f"Xero emulator on {emulator.base_url}  (overview: {emulator.base_url}/)")
    print(f"  authorize   {emulator.authorize_url}")
    print(f"  token       {emulator.token_url}")
    print(f"  connections {emulator.connections_url}")
    print(f"  api         {emulator.api_url}")
    print(
        f"  client_id {DEFAULT_CLIENT_ID}, client_secret {DEFAULT_CLIENT_SECRET}, tenant {emulator.default_tenant_id}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stopping.set()
        server.server_close()


if __name__ == "__main__":
    main()
