"""``python -m xero_emulator --port 8765 [--host 127.0.0.1] [--state FILE]``: the emulator as a demo server."""

import argparse
import logging

from .emulator import Emulator
from .identity import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from .server import make_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xero_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (keep it loopback)")
    parser.add_argument("--state", help="JSON file the organisations and tokens are loaded from and saved to")
    parser.add_argument("--day-limit", type=int, default=5000, help="calls per organisation per day")
    parser.add_argument("--no-limits", action="store_true", help="switch rate limits off")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
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
