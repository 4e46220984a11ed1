"""The demo shop behind ``fastapi-cashier demo`` (:mod:`.app`) and its HTML pages (:mod:`.pages`)."""

from .app import (
    CLOCK_STEP_DAYS,
    DEMO_CUSTOMER,
    DEMO_CUSTOMER_EMAIL,
    HOBBY_FEATURES,
    HOBBY_PLAN,
    MAX_SEATS,
    TEAM_FEATURES,
    TEAM_PLAN,
    TEAM_PRODUCT,
    TEAM_SEAT_PRICE,
    TEAM_TRIAL_DAYS,
    TICKET_PRICE,
    DemoCatalog,
    create_demo_app,
    seed_catalog,
)

__all__ = [
    "CLOCK_STEP_DAYS",
    "DEMO_CUSTOMER",
    "DEMO_CUSTOMER_EMAIL",
    "HOBBY_FEATURES",
    "HOBBY_PLAN",
    "MAX_SEATS",
    "TEAM_FEATURES",
    "TEAM_PLAN",
    "TEAM_PRODUCT",
    "TEAM_SEAT_PRICE",
    "TEAM_TRIAL_DAYS",
    "TICKET_PRICE",
    "DemoCatalog",
    "create_demo_app",
    "seed_catalog",
]
