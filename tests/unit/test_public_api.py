"""Tests for the public surface: ``__all__`` lists, the shared metadata, and ``py.typed``."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
from importlib import resources

import pytest
import sqlalchemy as sa

import fastapi_cashier
import fastapi_cashier.db
import fastapi_cashier.db.models

MODULES = [
    "fastapi_cashier.errors",
    "fastapi_cashier.money",
    "fastapi_cashier.currencies",
    "fastapi_cashier.settings",
    "fastapi_cashier.statuses",
    "fastapi_cashier.db",
    "fastapi_cashier.db.models",
    "fastapi_cashier.db.model_repositories",
    "fastapi_cashier.providers.base",
    "fastapi_cashier.providers.manual",
    "fastapi_cashier.providers.fake",
    "fastapi_cashier.providers.fake.state",
    "fastapi_cashier.providers.fake.wire",
    "fastapi_cashier.providers.paypal",
    "fastapi_cashier.pricing",
    "fastapi_cashier.pricing.periods",
    "fastapi_cashier.pricing.prices",
    "fastapi_cashier.pricing.proration",
    "fastapi_cashier.billing.catalog_rules",
    "fastapi_cashier.billing.catalog_sync",
    "fastapi_cashier.tax",
    "fastapi_cashier.tax.amounts",
    "fastapi_cashier.tax.rates",
    "fastapi_cashier.tax.rules",
    "fastapi_cashier.tax.vies",
]

POSTGRES_MAX_IDENTIFIER = 63

# The tables of DESIGN.md section 4, plus the per-name counters behind sequential invoice numbers.
DESIGNED_TABLES = {
    "products",
    "plans",
    "plan_tiers",
    "plan_features",
    "provider_objects",
    "customers",
    "customer_accounts",
    "billing_profiles",
    "credit_accounts",
    "credit_transactions",
    "checkout_sessions",
    "payments",
    "refunds",
    "subscriptions",
    "usage_records",
    "invoices",
    "invoice_lines",
    "status_changes",
    "webhook_events",
    "idempotency_keys",
}


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """Ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest; each in natural order."""
    if len(name) > 1 and name.isupper():
        category = 0
    elif name[:1].isupper():
        category = 1
    else:
        category = 2
    natural: list[int | str] = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return category, natural


def _public_names_of(module: types.ModuleType) -> set[str]:
    """Public names a module offers: its own classes, functions and constants, and for a package's
    ``__init__`` every re-exported object (submodules excepted)."""
    if hasattr(module, "__path__"):  # a package: its namespace is its public face
        return {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            # Constants only: type aliases and type variables are not part of the contract.
            names.update(
                t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 1
            )
    return {name for name in names if not name.startswith("_")}


# -- the package -------------------------------------------------------------------------------


def test_package_all_is_sorted_and_unique() -> None:
    names = fastapi_cashier.__all__
    assert sorted(names) == names
    assert len(set(names)) == len(names)


def test_package_all_is_importable() -> None:
    for name in fastapi_cashier.__all__:
        assert hasattr(fastapi_cashier, name), name
    namespace: dict[str, object] = {}
    exec("from fastapi_cashier import *", namespace)  # noqa: S102
    assert set(fastapi_cashier.__all__) <= set(namespace)


def test_package_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(fastapi_cashier).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(fastapi_cashier.__all__) == set()
    assert "__version__" in fastapi_cashier.__all__
    assert isinstance(fastapi_cashier.__version__, str)


def test_package_reexports_are_the_real_objects() -> None:
    from fastapi_cashier import errors, money, settings, statuses

    assert fastapi_cashier.Money is money.Money
    assert fastapi_cashier.PaymentsSettings is settings.PaymentsSettings
    assert fastapi_cashier.PaymentStatus is statuses.PaymentStatus
    assert fastapi_cashier.CashierError is errors.CashierError


# -- the modules -------------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", MODULES)
def test_module_all_is_sorted_and_unique(module_name: str) -> None:
    names = list(importlib.import_module(module_name).__all__)
    assert names == sorted(names, key=_isort_key)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("module_name", MODULES)
def test_module_all_names_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module_name", MODULES)
def test_module_all_is_complete(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = _public_names_of(module)
    assert public, module_name
    assert public - set(module.__all__) == set()


def test_isort_key_orders_like_ruff() -> None:
    names = ["metadata", "Base", "TABLE_PREFIX", "__version__", "Page", "create_engine"]
    assert sorted(names, key=_isort_key) == [
        "TABLE_PREFIX",
        "Base",
        "Page",
        "__version__",
        "create_engine",
        "metadata",
    ]


# -- the metadata ------------------------------------------------------------------------------


def test_metadata_is_the_base_metadata() -> None:
    assert fastapi_cashier.metadata is fastapi_cashier.db.Base.metadata
    assert fastapi_cashier.db.metadata is fastapi_cashier.db.Base.metadata
    assert isinstance(fastapi_cashier.metadata, sa.MetaData)


def test_metadata_holds_only_cashier_tables() -> None:
    tables = fastapi_cashier.metadata.tables
    assert tables
    for name in tables:
        assert name.startswith("cashier_"), name
    unprefixed = {name.removeprefix("cashier_") for name in tables}
    assert unprefixed >= DESIGNED_TABLES


def _constraint_names() -> list[str]:
    names: list[str] = []
    for table in fastapi_cashier.metadata.tables.values():
        for constraint in table.constraints:
            assert isinstance(constraint.name, str), f"unnamed {type(constraint).__name__} on {table.name}"
            names.append(constraint.name)
        for index in table.indexes:
            assert isinstance(index.name, str), f"unnamed index on {table.name}"
            names.append(index.name)
    return names


def test_constraint_and_index_names_fit_postgres() -> None:
    names = _constraint_names()
    assert names
    too_long = [name for name in names if len(name) > POSTGRES_MAX_IDENTIFIER]
    assert too_long == []
    for table in fastapi_cashier.metadata.tables:
        assert len(table) <= POSTGRES_MAX_IDENTIFIER


def test_constraint_and_index_names_are_unique() -> None:
    # PostgreSQL indexes share one namespace per schema; duplicate names break CREATE.
    names = _constraint_names()
    assert len(names) == len(set(names))


def test_every_table_has_a_named_primary_key() -> None:
    for table in fastapi_cashier.metadata.tables.values():
        assert table.primary_key.columns, table.name
        assert table.primary_key.name == f"pk_{table.name}"


# -- packaging ---------------------------------------------------------------------------------


def test_package_ships_py_typed() -> None:
    marker = resources.files("fastapi_cashier").joinpath("py.typed")
    assert marker.is_file()
