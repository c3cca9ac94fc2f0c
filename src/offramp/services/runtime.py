"""What the services need at run time, built once per app and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from offramp.services.accounting import Accounting
from offramp.services.admission import Admission
from offramp.services.pool import ModelPool


@dataclass(frozen=True)
class Runtime:
    """The loaded models (possibly shared between apps), this app's admission control,
    and its accounting (caches, limits, ledger, metrics; all off by default)."""

    pool: ModelPool
    admission: Admission
    accounting: Accounting = field(default_factory=Accounting)
