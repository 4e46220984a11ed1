"""The HTTP routes, grouped by audience; :func:`build_routes` assembles them for a router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from ..problems import ProblemRoute
from . import admin, catalog, customers, documents, entitlements, public, subscriptions, webhooks

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build_routes"]


def build_routes(payments: PaymentsRouter) -> APIRouter:
    """Every route of ``payments`` but those the adapters contribute (see ``PaymentsRouter``)."""
    router = APIRouter(route_class=ProblemRoute)
    router.include_router(public.build(payments))
    webhooks.add_routes(router, payments)
    router.include_router(customers.build(payments))
    router.include_router(documents.build(payments))
    router.include_router(subscriptions.build(payments))
    router.include_router(entitlements.build(payments))
    router.include_router(admin.build(payments))
    router.include_router(catalog.build(payments))
    return router
