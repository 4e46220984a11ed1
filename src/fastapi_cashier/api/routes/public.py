"""Public routes: health."""

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter

from ..problems import ProblemRoute

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """``GET /health``."""
    router = APIRouter(route_class=ProblemRoute, tags=["public"])

    @router.get("/health", name="payments:health")
    async def health() -> dict[str, Any]:
        """Liveness and database reachability (one ``SELECT 1``)."""
        async with payments.read_service() as svc:
            await svc.session.execute(sa.text("SELECT 1"))
        return {"status": "ok", "database": "ok", "providers": sorted(payments.providers)}

    return router
