"""``GET /metrics``: Prometheus text exposition of this app's metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from offramp.api.deps import gateway_of

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body = gateway_of(request).accounting.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
