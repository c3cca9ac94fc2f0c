"""What the services need at run time, built once per app and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from offramp.services.admission import Admission
from offramp.services.pool import ModelPool


@dataclass(frozen=True)
class Runtime:
    """The loaded models (possibly shared between apps) and this app's admission control."""

    pool: ModelPool
    admission: Admission
