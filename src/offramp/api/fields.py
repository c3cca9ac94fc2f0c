"""Field types shared by the wire models: names are refused at the door when they could
not be stored whole in the usage ledger (its ``model`` and ``end_user`` columns)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MODEL_NAME_MAX = 128  # the ledger's model/route column
USER_MAX = 256  # the ledger's end_user column

ModelName = Annotated[str, Field(min_length=1, max_length=MODEL_NAME_MAX)]
EndUser = Annotated[str, Field(max_length=USER_MAX)]
