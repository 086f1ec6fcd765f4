"""An offline stand-in for Xero's identity service and Accounting API, with Xero's rules.

Start it with ``python -m xero_emulator`` or, in tests, ``xero_emulator.testing.running_emulator()``.
It imports nothing outside the standard library.
"""

from .emulator import BookkeeperError, Emulator

__all__ = ["BookkeeperError", "Emulator"]
