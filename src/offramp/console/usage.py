"""The console's Usage explorer: ledger records filtered by key, model, route, endpoint,
task, status and time, with their sums, and the same selection as a CSV download."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from offramp.api.responses import JSONResponse
from offramp.console.access import signed_in
from offramp.console.status import engine_of
from offramp.ledger import explorer

router = APIRouter(prefix="/console/api", dependencies=[Depends(signed_in)])


def usage_filter(
    since: Annotated[float | None, Query(description="Unix seconds, inclusive.")] = None,
    until: Annotated[float | None, Query(description="Unix seconds, exclusive.")] = None,
    key_id: str | None = None,
    model: str | None = None,
    route: str | None = None,
    endpoint: str | None = None,
    task: str | None = None,
    status: Annotated[str | None, Query(description="429, 2xx, 4xx, 5xx or error.")] = None,
) -> explorer.UsageFilter:
    where = explorer.UsageFilter(since, until, key_id, model, route, endpoint, task, status or None)
    where.clauses()  # an unreadable status is refused here, before anything is sent
    return where


@router.get("/usage")
async def usage(
    request: Request,
    where: Annotated[explorer.UsageFilter, Depends(usage_filter)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    choices: Annotated[
        bool, Query(description="Also list the keys, models, routes and endpoints seen.")
    ] = False,
) -> JSONResponse:
    engine = engine_of(request)

    def read() -> JSONResponse:
        seen = explorer.distinct_values(engine, time.time() - 30 * 86400) if choices else None
        return JSONResponse(
            {
                "rows": explorer.rows(engine, where, limit, offset),
                "totals": explorer.totals(engine, where),
                "choices": seen,
                "limit": limit,
                "offset": offset,
            }
        )

    return await asyncio.to_thread(read)


@router.get("/usage.csv")
async def usage_csv(
    request: Request, where: Annotated[explorer.UsageFilter, Depends(usage_filter)]
) -> StreamingResponse:
    lines = explorer.csv_lines(engine_of(request), where)
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="offramp-usage.csv"'},
    )
