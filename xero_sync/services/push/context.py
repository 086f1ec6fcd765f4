"""What every stage of a push chunk works with, handed in rather than kept on a class."""

import datetime
from dataclasses import dataclass

from ...ratelimit import PacedGateway
from ..contact_index import ContactIndex
from ..run_config import RunConfig
from .links import LinkBook
from .sender import Sender

# Xero's clocks and ours differ a little; look back this far when asking "what changed since".
LOOKBACK = datetime.timedelta(minutes=2)


@dataclass(frozen=True)
class PushContext:
    tenant_id: object
    gateway: PacedGateway
    config: RunConfig
    contact_index: ContactIndex
    links: LinkBook
    sender: Sender
