"""The ``fastapi-cashier`` command line."""

from __future__ import annotations

from datetime import timedelta

import click
from pydantic import ValidationError as SettingsValidationError

from . import migrations
from .__about__ import __version__
from .errors import ConfigurationError
from .settings import PaymentsSettings

__all__ = ["main"]


def _settings() -> PaymentsSettings:
    try:
        return PaymentsSettings()
    except SettingsValidationError as exc:
        raise click.ClickException(f"invalid PAYMENTS_* settings:\n{exc}") from exc


def _database_url(url: str | None) -> str:
    return url or _settings().database.url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fastapi-cashier")
def main() -> None:
    """Payments and subscription billing for FastAPI: operations."""


@main.group()
def db() -> None:
    """Apply or revert the shipped database migrations (reads PAYMENTS_DATABASE__URL)."""


_url_option = click.option(
    "--url", default=None, help="Database URL; defaults to PaymentsSettings().database.url."
)


@db.command("upgrade")
@click.argument("revision", default="head")
@_url_option
def db_upgrade(revision: str, url: str | None) -> None:
    """Upgrade the billing tables to REVISION (default: head)."""
    target = _database_url(url)
    migrations.upgrade(target, revision)
    click.echo(f"database at revision {migrations.current_revision(target) or 'base'}")


@db.command("downgrade")
@click.argument("revision", default="-1")
@_url_option
def db_downgrade(revision: str, url: str | None) -> None:
    """Revert the billing tables to REVISION (default: one step back; 'base' drops them all)."""
    target = _database_url(url)
    migrations.downgrade(target, revision)
    click.echo(f"database at revision {migrations.current_revision(target) or 'base'}")


@db.command("current")
@_url_option
def db_current(url: str | None) -> None:
    """Show the revision the database is at, and whether it is the newest."""
    current = migrations.current_revision(_database_url(url))
    head = migrations.head_revision()
    state = "up to date" if current == head else f"behind head {head}"
    click.echo(f"{current or 'base'} ({state})")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on."
)
@click.option(
    "--database-url",
    default="sqlite+aiosqlite:///./cashier-demo.db",
    show_default=True,
    help="Where the demo keeps its tables.",
)
def demo(host: str, port: int, database_url: str) -> None:
    """Run the demo shop: a concert ticket and a per-seat subscription, through the fake provider.

    Prints the address to open, a customer token and an admin token for the JSON API (signed
    with a secret generated for this run) and a few curl commands, then serves the app until
    Ctrl+C. PAYMENTS_* variables are not read; no real money moves.
    """
    import uvicorn

    from .api.auth import create_token
    from .demo import (
        CLOCK_STEP_DAYS,
        DEMO_CUSTOMER,
        DEMO_CUSTOMER_EMAIL,
        TEAM_FEATURES,
        TEAM_SEAT_PRICE,
        TEAM_TRIAL_DAYS,
        create_demo_app,
    )

    try:
        app, _payments, settings = create_demo_app(database_url=database_url)
    except (SettingsValidationError, ConfigurationError) as exc:
        raise click.ClickException(f"cannot build the demo app: {exc}") from exc
    auth = settings.auth
    customer_token = create_token(auth, DEMO_CUSTOMER, email=DEMO_CUSTOMER_EMAIL)
    admin_token = create_token(auth, "demo-admin", email="admin@example.com", roles=[auth.admin_role])
    root = f"http://{_url_host(host)}:{port}"
    seat_price = TEAM_SEAT_PRICE.format()
    requests_per_minute = int(TEAM_FEATURES["requests_per_minute"])
    click.echo(
        "\n".join(
            [
                "fastapi-cashier demo: a shop with the fake provider; no real money moves.",
                "",
                f"  Open {root}/ and buy a concert ticket, or subscribe to the Team plan",
                f"  ({seat_price} per seat and month, {TEAM_TRIAL_DAYS}-day trial); then follow it on",
                f"  {root}/demo/account: advance the fake clock {CLOCK_STEP_DAYS} days to end the trial",
                f"  (the first invoice is seats x {seat_price}), or open the billing portal.",
                f"  Payments API: {root}/billing   OpenAPI docs: {root}/docs",
                f"  Database: {database_url}",
                "",
                f"Tokens for the JSON API (valid until this process stops; the customer is {DEMO_CUSTOMER}):",
                "",
                f"  export CUSTOMER_TOKEN={customer_token}",
                f"  export ADMIN_TOKEN={admin_token}",
                "",
                "Try:",
                "",
                f'  curl -H "Authorization: Bearer $CUSTOMER_TOKEN" {root}/billing/me',
                f'  curl -H "Authorization: Bearer $CUSTOMER_TOKEN" {root}/billing/payments',
                f"  curl {root}/billing/plans",
                f'  curl -H "Authorization: Bearer $CUSTOMER_TOKEN" {root}/billing/subscriptions',
                f'  curl -H "Authorization: Bearer $CUSTOMER_TOKEN" {root}/billing/invoices',
                f'  curl -H "Authorization: Bearer $ADMIN_TOKEN" {root}/billing/admin/summary',
                "",
                'A route of the shop guarded by require_feature("api_access") and rate_limit():',
                "",
                f'  curl -i -H "Authorization: Bearer $CUSTOMER_TOKEN" {root}/demo/api/data',
                "",
                "  402 subscription_required before you subscribe, 200 once you do (the trial counts),",
                f"  then 429 rate_limited with Retry-After after {requests_per_minute} calls in the same",
                f"  clock minute: the Team plan allows {requests_per_minute} requests per minute.",
                "",
            ]
        )
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="info")
    uvicorn.Server(config).run()


@main.command("token")
@click.argument("subject")
@click.option("--admin", is_flag=True, help="Add the admin role (auth.admin_role) to the token.")
@click.option("--email", default=None, help="An email claim.")
@click.option(
    "--expires-in-hours",
    default=12.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Lifetime of the token.",
)
def token(subject: str, admin: bool, email: str | None, expires_in_hours: float) -> None:
    """Print a development JWT for SUBJECT (the host's user id).

    The token is signed with PAYMENTS_AUTH__JWT_SECRET, so a PaymentsRouter configured with the
    same secret accepts it: curl -H "Authorization: Bearer $(fastapi-cashier token alice)" ...
    """
    from .api.auth import create_token

    if not subject.strip():
        raise click.BadParameter("must not be empty", param_hint="SUBJECT")
    auth = _settings().auth
    if auth.jwt_secret is None:
        raise click.ClickException(
            "no JWT secret is configured: set PAYMENTS_AUTH__JWT_SECRET (at least 32 bytes), e.g.\n"
            "  export PAYMENTS_AUTH__JWT_SECRET="
            "\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""
        )
    roles = [auth.admin_role] if admin else []
    try:
        signed = create_token(
            auth, subject, email=email, roles=roles, expires_in=timedelta(hours=expires_in_hours)
        )
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(signed)
