"""The ``fastapi-cashier`` command line."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import click
from pydantic import ValidationError as SettingsValidationError

from . import migrations
from .__about__ import __version__
from .clock import utcnow
from .errors import CashierError, ConfigurationError
from .settings import PaymentsSettings
from .statuses import WebhookEventStatus
from .webhooks.inbox import DeliveryResult

if TYPE_CHECKING:
    from .api.router import PaymentsRouter
    from .providers.lemonsqueezy import LemonSqueezyProvider

T = TypeVar("T")

__all__ = ["main"]


def _settings() -> PaymentsSettings:
    try:
        return PaymentsSettings()
    except SettingsValidationError as exc:
        raise click.ClickException(f"invalid PAYMENTS_* settings:\n{exc}") from exc


def _require_driver(url: str) -> None:
    from .db.engine import require_driver

    try:
        require_driver(url)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from exc


def _database_url(url: str | None) -> str:
    target = url or _settings().database.url
    _require_driver(target)
    return target


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
    _require_driver(database_url)
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


# --------------------------------------------------------------------------- webhooks

_app_option = click.option(
    "--app",
    "app_path",
    default=None,
    metavar="MODULE:ATTR",
    help=(
        "Your PaymentsRouter (or a function returning one), for apps with their own providers; "
        "default: PaymentsRouter(PaymentsSettings()) from the PAYMENTS_* variables."
    ),
)


def _load_router(app_path: str | None) -> PaymentsRouter:
    from .api.router import PaymentsRouter

    if app_path is None:
        try:
            return PaymentsRouter(_settings())
        except ConfigurationError as exc:
            raise click.ClickException(f"cannot build the PaymentsRouter: {exc.message}") from exc
    module_name, _, attr = app_path.partition(":")
    if not module_name or not attr:
        raise click.BadParameter("expected MODULE:ATTR, e.g. myapp.billing:payments", param_hint="--app")
    import importlib
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot load {app_path}: {exc}", param_hint="--app") from exc
    if callable(target) and not isinstance(target, PaymentsRouter):
        target = target()
    if not isinstance(target, PaymentsRouter):
        raise click.BadParameter(f"{app_path} is not a PaymentsRouter", param_hint="--app")
    return target


def _run_with_router(app_path: str | None, work: Callable[[PaymentsRouter], Awaitable[T]]) -> T:
    payments = _load_router(app_path)
    _require_driver(payments.settings.database.url)

    async def run() -> T:
        await payments.startup()
        try:
            return await work(payments)
        finally:
            await payments.shutdown()

    return asyncio.run(run())


_DURATION = re.compile(r"^(\d+)\s*([mhd])$")


def _parse_since(value: str) -> datetime:
    """An aware ISO 8601 time, or a duration back from now: ``90m``, ``6h``, ``2d``."""
    match = _DURATION.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}
        return utcnow() - delta[unit]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            "expected an ISO 8601 time with its offset (2026-11-20T08:00:00+00:00) "
            "or a duration back from now (90m, 6h, 2d)",
            param_hint="--since",
        ) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise click.BadParameter(
            "give the time with its UTC offset (e.g. 2026-11-20T08:00:00+00:00)", param_hint="--since"
        )
    return parsed


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.splitlines()[-1]
    return line if len(line) <= width else line[: width - 1] + "…"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@main.group()
def webhooks() -> None:
    """Look at stored webhook events; retry failed ones; replay a period."""


@webhooks.command("list")
@click.option(
    "--status",
    type=click.Choice([status.value for status in WebhookEventStatus]),
    default=None,
    help="Only events in this state.",
)
@click.option("--provider", default=None, help="Only this provider's events.")
@click.option("--type", "event_type", default=None, help="Only this canonical event type.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100), help="How many.")
@_app_option
def webhooks_list(
    status: str | None, provider: str | None, event_type: str | None, limit: int, app_path: str | None
) -> None:
    """Stored events, newest first, with their state, attempts, last error or why they were ignored."""
    from .db.model_repositories import WebhookEventRepository
    from .db.models import WebhookEvent

    async def work(payments: PaymentsRouter) -> Sequence[WebhookEvent]:
        conditions = []
        if status is not None:
            conditions.append(WebhookEvent.status == WebhookEventStatus(status))
        if provider is not None:
            conditions.append(WebhookEvent.provider == provider)
        if event_type is not None:
            conditions.append(WebhookEvent.type == event_type)
        async with payments.session_factory() as session:
            page = await WebhookEventRepository(session=session).paginate(*conditions, limit=limit)
        return page.items

    rows = _run_with_router(app_path, work)
    if not rows:
        click.echo("no stored webhook events match")
        return
    click.echo(
        f"{'id':36}  {'received (UTC)':19}  {'provider':10} {'type':28} {'status':9} tries  next attempt"
    )
    for row in rows:
        click.echo(
            f"{row.id!s:36}  {_when(row.received_at):19}  {row.provider:10} {row.type[:28]:28} "
            f"{row.status.value:9} {row.attempts:5}  {_when(row.next_attempt_at)}"
        )
        if row.last_error:
            click.echo(f"{'':38}{_short(row.last_error, 90)}")
        if row.ignored_reason:
            click.echo(f"{'':38}ignored: {_short(row.ignored_reason, 81)}")


def _report(results: Sequence[DeliveryResult]) -> None:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing to do"
    click.echo(summary)
    for result in results:
        if result.status == "failed":
            click.echo(f"  {result.id} ({result.event_id}): {_short(result.detail, 100)}", err=True)


@webhooks.command("retry")
@click.argument("event_ids", nargs=-1, type=click.UUID)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed event, whatever its attempts.")
@click.option("--due", is_flag=True, help="Every event whose next attempt is due (what the loop does).")
@_app_option
def webhooks_retry(
    event_ids: tuple[uuid.UUID, ...], all_failed: bool, due: bool, app_path: str | None
) -> None:
    """Apply stored events now: the EVENT_IDS given (ids from `webhooks list`), --failed or --due.

    Exits with status 1 when an event failed again (it stays stored, with the new error).
    """
    if bool(event_ids) + all_failed + due != 1:
        raise click.UsageError("give event ids, or --failed, or --due (one of them)")

    async def work(payments: PaymentsRouter) -> list[DeliveryResult]:
        if due:
            results: list[DeliveryResult] = []
            while batch := await payments.inbox.process_due(limit=100):
                results.extend(batch)
                click.echo(f"applied {len(results)} due events so far", err=True)
            return results
        ids = list(event_ids) or await _failed_ids(payments)
        results = []
        with click.progressbar(length=len(ids), label="retrying", file=sys.stderr) as bar:
            for stored_id in ids:
                try:
                    results.append(await payments.inbox.retry(stored_id))
                except CashierError as exc:
                    results.append(DeliveryResult(str(stored_id), "failed", exc.message, id=stored_id))
                bar.update(1)
        return results

    results = _run_with_router(app_path, work)
    _report(results)
    if any(result.status == "failed" for result in results):
        sys.exit(1)


async def _failed_ids(payments: PaymentsRouter) -> list[uuid.UUID]:
    import sqlalchemy as sa

    from .db.models import WebhookEvent

    stmt = (
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.status == WebhookEventStatus.FAILED)
        .order_by(WebhookEvent.received_at, WebhookEvent.id)
    )
    async with payments.session_factory() as session:
        return list((await session.scalars(stmt)).all())


@webhooks.command("replay")
@click.option(
    "--since",
    required=True,
    help="Events received at or after this time: ISO 8601 with offset, or 90m / 6h / 2d back from now.",
)
@click.option("--provider", default=None, help="Only this provider's events.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_app_option
def webhooks_replay(since: str, provider: str | None, yes: bool, app_path: str | None) -> None:
    """Apply again every event received since --since, oldest first.

    Safe on events that were applied already: what is already there is skipped, and an applied
    event keeps its first outcome. Exits with status 1 when an event failed.
    """
    start = _parse_since(since)

    async def work(payments: PaymentsRouter) -> list[DeliveryResult]:
        total = await payments.inbox.count_since(start, provider)
        if total == 0:
            return []
        if not yes:
            click.confirm(f"replay {total} events received since {start.isoformat()}?", abort=True)
        with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                bar.update(count - done)
                done = count

            return await payments.inbox.replay(since=start, provider=provider, on_progress=advance)

    results = _run_with_router(app_path, work)
    _report(results)
    if any(result.status == "failed" for result in results):
        sys.exit(1)


# --------------------------------------------------------------------------- catalog, reconcile


@main.group()
def catalog() -> None:
    """The product catalog at providers."""


@catalog.command("sync")
@click.option("--provider", default=None, help="An enabled provider; default: PAYMENTS_DEFAULT_PROVIDER.")
@_app_option
def catalog_sync(provider: str | None, app_path: str | None) -> None:
    """Create or update the active plans' prices at a provider (idempotent; safe to re-run)."""

    async def work(payments: PaymentsRouter) -> str:
        with click.progressbar(length=1, label="syncing plans", file=sys.stderr) as bar:

            def advance(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            async with payments.service() as svc:
                report = await svc.catalog.sync(provider, on_progress=advance)
        return f"{report.created} prices created, {report.unchanged} unchanged, {report.archived} archived"

    try:
        click.echo(_run_with_router(app_path, work))
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc


@main.group()
def subscriptions() -> None:
    """Subscriptions: the work the background loop does, run by hand or from a scheduler."""


@subscriptions.command("cancel-due")
@click.option("--limit", default=100, show_default=True, help="At most this many subscriptions in this run.")
@_app_option
def subscriptions_cancel_due(limit: int, app_path: str | None) -> None:
    """Cancel at the provider the subscriptions set to cancel at a period end that has passed,
    for providers without a cancel at period end of their own (PayPal). Safe beside the loop."""

    async def work(payments: PaymentsRouter) -> list[uuid.UUID]:
        return await payments.cancel_due_subscriptions(limit=limit)

    try:
        cancelled = _run_with_router(app_path, work)
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc
    for subscription_id in cancelled:
        click.echo(f"cancelled {subscription_id}")
    click.echo(f"{len(cancelled)} subscriptions cancelled at their period end")


@main.group()
def tax() -> None:
    """VAT: the VIES checks of the customers' VAT numbers."""


@tax.command("recheck")
@click.option("--limit", default=200, show_default=True, help="At most this many numbers in this run.")
@_app_option
def tax_recheck(limit: int, app_path: str | None) -> None:
    """Ask VIES again about the VAT numbers whose check is due (those it could not answer first)."""

    async def work(payments: PaymentsRouter) -> dict[str, int]:
        async with payments.service() as svc:
            return await svc.tax_ids.recheck_due(limit=limit)

    try:
        counts = _run_with_router(app_path, work)
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{counts['valid']} valid, {counts['invalid']} invalid, {counts['unavailable']} unavailable")


@main.group()
def lemonsqueezy() -> None:
    """Lemon Squeezy: the store's webhook, and how plans map onto its variants."""


def _lemonsqueezy(payments: PaymentsRouter) -> LemonSqueezyProvider:
    from .providers.lemonsqueezy import LemonSqueezyProvider

    provider = payments.providers.get("lemonsqueezy")
    if not isinstance(provider, LemonSqueezyProvider):
        raise click.ClickException(
            "Lemon Squeezy is not enabled: set PAYMENTS_LEMONSQUEEZY__API_KEY, __STORE_ID and "
            "__WEBHOOK_SECRETS"
        )
    return provider


@lemonsqueezy.group("webhook")
def lemonsqueezy_webhook() -> None:
    """The store's webhook."""


@lemonsqueezy_webhook.command("register")
@click.argument("url")
@click.option(
    "--secret",
    default=None,
    help="Signing secret; default: the first of PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS.",
)
@_app_option
def lemonsqueezy_webhook_register(url: str, secret: str | None, app_path: str | None) -> None:
    """Create the store's webhook to URL (your POST {prefix}/webhooks/lemonsqueezy) for every event used."""

    async def work(payments: PaymentsRouter) -> str:
        created = await _lemonsqueezy(payments).register_webhook(url, secret=secret)
        events = created.get("attributes", {}).get("events") or []
        return f"webhook {created['id']} -> {url} for {len(events)} events: {', '.join(events)}"

    try:
        click.echo(_run_with_router(app_path, work))
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc


@lemonsqueezy.command("plans")
@_app_option
def lemonsqueezy_plans(app_path: str | None) -> None:
    """Show which variant each active plan links to, the plans left unlinked and the prices that differ.

    Changes nothing, here or at Lemon Squeezy; `catalog sync --provider lemonsqueezy` stores the links.
    Exits with status 1 when a plan is left unlinked.
    """
    from .providers.lemonsqueezy import CatalogLinks

    async def work(payments: PaymentsRouter) -> tuple[CatalogLinks, dict[uuid.UUID, str]]:
        provider = _lemonsqueezy(payments)
        async with payments.service() as svc:
            plans = [await svc.catalog.plan_ref(plan, provider) for plan in await svc.catalog.list_active()]
        names = {plan.id: plan.name for plan in plans}
        return await provider.link_catalog(plans), names

    try:
        links, names = _run_with_router(app_path, work)
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc
    for plan_id, variant_id in links.links.items():
        click.echo(f"linked    {names[plan_id]} ({plan_id}) -> variant {variant_id}")
    for difference in links.price_differences:
        click.echo(
            f"price     {difference.plan_name}: plan {difference.plan_amount}, "
            f"variant {difference.variant_id} {difference.variant_amount} (minor units)"
        )
    for plan in links.unmatched:
        click.echo(f"unmatched {plan.name} ({plan.id}): no variant with its name, interval and price")
    if links.unmatched:
        sys.exit(1)


@main.command("reconcile")
@click.option("--provider", default=None, help="An enabled provider; default: PAYMENTS_DEFAULT_PROVIDER.")
@click.option("--fix", is_flag=True, help="Apply the provider's state where it differs (audited).")
@click.option(
    "--all", "everything", is_flag=True, help="Also compare rows in a final state (refunded, expired, ...)."
)
@_app_option
def reconcile(provider: str | None, fix: bool, everything: bool, app_path: str | None) -> None:
    """Compare payments, refunds and subscriptions with a provider; report (and --fix) drift.

    Exits with status 1 when drift remains (always without --fix, when some was found).
    """
    from .billing.reconcile import ReconcileReport

    async def work(payments: PaymentsRouter) -> ReconcileReport:
        with click.progressbar(length=1, label="comparing", file=sys.stderr) as bar:

            def advance(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            async with payments.service() as svc:
                return await svc.reconcile.run(provider, fix=fix, everything=everything, on_progress=advance)

    try:
        report = _run_with_router(app_path, work)
    except CashierError as exc:
        raise click.ClickException(exc.message) from exc
    for drift in report.drift:
        state = "fixed" if drift.local_id in report.fixed else report.unfixed.get(drift.local_id, "not fixed")
        click.echo(
            f"{drift.kind} {drift.local_id} ({drift.provider_id}): {drift.field} "
            f"local={drift.local} provider={drift.remote} [{state}]"
        )
    drifted = {drift.local_id for drift in report.drift}
    click.echo(f"{report.checked} checked, {len(drifted)} drifted, {len(report.fixed)} fixed")
    if drifted - set(report.fixed):
        sys.exit(1)
