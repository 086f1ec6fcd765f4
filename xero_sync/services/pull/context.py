"""What every stage of a pull works with, handed in rather than kept on a class."""

from dataclasses import dataclass

from ...ratelimit import PacedGateway
from ..contact_index import ContactIndex
from ..cursors import ChangesReader
from ..run_config import RunConfig
from .failures import PullFailures, PullReport


@dataclass(frozen=True)
class PullContext:
    tenant_id: object
    gateway: PacedGateway
    config: RunConfig
    contact_index: ContactIndex
    reader: ChangesReader
    failures: PullFailures
    report: PullReport
