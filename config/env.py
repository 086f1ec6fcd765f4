"""The one place that reads the environment.

Every setting has a default that works for the embedded run (SQLite, a broker that needs no server,
the built-in Xero emulator), so `make run` needs no configuration at all.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A .env file is optional; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
