"""Every ``/console`` route in one router; none of them exists without ``admin_key``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from offramp.console import keys, pages, status, tasks, usage
from offramp.console.access import console_on


def console_router() -> APIRouter:
    """The console's pages and JSON routes under ``/console``."""
    router = APIRouter(dependencies=[Depends(console_on)], include_in_schema=False)
    for module in (pages, status, keys, usage, tasks):
        router.include_router(module.router)
    return router
