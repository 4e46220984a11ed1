"""``PaymentsSettings``: the single settings object of the library.

Every value can come from Python keyword arguments, from the environment (prefix ``PAYMENTS_``,
nested sections joined by ``__``, e.g. ``PAYMENTS_DATABASE__URL``), or from a ``.env`` file.
A provider section left ``None`` means that provider is off.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from .currencies import normalize_currency
from .errors import UnknownCurrencyError

__all__ = [
    "AuthSettings",
    "DatabaseSettings",
    "FakeProviderSettings",
    "LemonSqueezySettings",
    "ManualProviderSettings",
    "PayPalSettings",
    "PaymentsSettings",
    "ProviderCallSettings",
    "SellerSettings",
    "StripeSettings",
    "TaxSettings",
    "VIESSettings",
    "WebhookSettings",
    "origin_of",
]

Environment = Literal["development", "test", "production"]


def _split_secrets(value: Any) -> Any:
    """Accept a comma-separated string or a JSON list for a list of secrets."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased, default port left out;
    ``None`` for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


class _Section(BaseModel):
    # hide_input_in_errors: a refused value may be a secret; never echo it in the error message.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class DatabaseSettings(_Section):
    """Where the library keeps its tables.

    Attributes:
        url: An async SQLAlchemy URL: ``sqlite+aiosqlite://``, ``postgresql+asyncpg://`` or
            ``mysql+aiomysql://``.
        echo: Log every SQL statement (development only).
        pool_size: Connections kept open (ignored by SQLite).
        max_overflow: Extra connections allowed under load (ignored by SQLite).
        create_tables: Create missing tables at start-up. ``None`` means "yes in development and
            test, no in production" where Alembic migrations should be used instead.
        pool_pre_ping: Test every pooled connection at checkout (a round trip each time).
            Off by default: dropped connections are caught by ``pool_recycle_seconds`` and by
            SQLAlchemy discarding the pool after a disconnect error.
        pool_recycle_seconds: Replace pooled connections older than this (ignored by SQLite).
    """

    url: str = "sqlite+aiosqlite:///./payments.db"
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    create_tables: bool | None = None
    pool_pre_ping: bool = False
    pool_recycle_seconds: int = Field(default=1800, ge=1)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        known = {"sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql", "mariadb+aiomysql"}
        if scheme not in known:
            raise ValueError(
                f"database url scheme {scheme!r} is not an async driver the library supports; "
                f"use one of {', '.join(sorted(known))}"
            )
        return value


class AuthSettings(_Section):
    """How the built-in authentication reads the bearer token.

    Attributes:
        mode: ``"jwt"`` verifies a bearer JWT; ``"none"`` treats every caller as an admin demo
            user and is refused in production.
        jwt_secret: The HS256 shared secret.
        jwt_public_key: A PEM public key for RS256 tokens.
        jwt_algorithms: Algorithms accepted; never ``none``.
        audience: Expected ``aud`` claim, if any.
        issuer: Expected ``iss`` claim, if any.
        admin_role: A principal is an admin when the token's ``roles`` claim contains it.
    """

    mode: Literal["jwt", "none"] = "jwt"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    audience: str | None = None
    issuer: str | None = None
    admin_role: str = "admin"

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: list[str]) -> list[str]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}
        bad = [alg for alg in value if alg not in allowed]
        if bad or not value:
            raise ValueError(f"jwt_algorithms must be a non-empty subset of {sorted(allowed)}; got {value}")
        return value

    @property
    def configured(self) -> bool:
        """True when JWT verification has a key to verify with."""
        return self.jwt_secret is not None or self.jwt_public_key is not None


class WebhookSettings(_Section):
    """The webhook inbox.

    Attributes:
        tolerance_seconds: How old a signed timestamp may be before the delivery is refused.
        retry_interval_seconds: Base delay of the exponential backoff for failed events.
        max_attempts: Attempts after which a failed event stays failed for an admin to look at.
        max_body_bytes: Larger bodies are refused with 413 before any parsing.
        retry_loop: Whether the router's lifespan runs the background loop that retries due
            events (and does the periodic housekeeping: expiring credits, purging old
            idempotency keys and rate-limit windows). Safe in every process at once.
        poll_interval_seconds: How often that loop looks for due events.
        orphan_retry_seconds: How long an event naming a subscription not recorded here yet
            (a first invoice or payment that overtook the event creating the subscription) is
            retried before it is ignored with the reason; 0 ignores it at once.
    """

    tolerance_seconds: int = Field(default=300, ge=1)
    retry_interval_seconds: int = Field(default=30, ge=1)
    max_attempts: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    retry_loop: bool = True
    poll_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    orphan_retry_seconds: int = Field(default=3600, ge=0)


class ProviderCallSettings(_Section):
    """Calls to providers: faults a retry may cure are retried with the same idempotency key.

    Attributes:
        max_attempts: Attempts per call, the first included (1 turns retries off).
        backoff_seconds: Delay before the first retry; it doubles for each further one. A
            provider's own ``Retry-After`` hint is honoured when longer.
        max_backoff_seconds: The longest delay between two attempts.
        resume_after_seconds: How long a refund whose provider call kept failing stays pending
            before the background loop asks the provider again, with the same key.
    """

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    max_backoff_seconds: float = Field(default=10.0, ge=0, le=300)
    resume_after_seconds: int = Field(default=60, ge=0)


class StripeSettings(_Section):
    """Stripe. ``webhook_secrets`` takes several secrets so they can be rotated.

    Attributes:
        api_key: The secret (``sk_...``) or restricted (``rk_...``) key.
        webhook_secrets: The signing secrets (``whsec_...``) of the webhook endpoints.
        api_version: Overrides the API version the adapter pins; leave unset.
        api_base: Another address for the Stripe API, for a local test server such as
            localstripe; ``None`` is Stripe itself.
        automatic_tax: Let Stripe Tax compute the tax (``automatic_tax`` on Checkout Sessions);
            invoices then record Stripe's tax rather than the library's.
    """

    api_key: SecretStr
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    api_version: str | None = None
    api_base: HttpUrl | None = None
    automatic_tax: bool = False

    _split = field_validator("webhook_secrets", mode="before")(_split_secrets)


class PayPalSettings(_Section):
    """PayPal REST (Orders v2, Payments v2, Billing Subscriptions v1).

    Attributes:
        client_id: The REST app's client id.
        client_secret: Its secret.
        webhook_id: The id PayPal gave the webhook listener (``/webhooks/paypal``); every
            delivery is refused while it is unset, since the signature covers it.
        mode: ``sandbox`` or ``live``: which PayPal API the app's credentials belong to.
        api_base: Another address for the PayPal API, for a local test server; ``None`` is the
            address of ``mode``.
    """

    client_id: str
    client_secret: SecretStr
    webhook_id: str | None = None
    mode: Literal["sandbox", "live"] = "sandbox"
    api_base: HttpUrl | None = None


class LemonSqueezySettings(_Section):
    """Lemon Squeezy. ``webhook_secrets`` takes several secrets so they can be rotated.

    Attributes:
        api_key: An API key of the store's mode (test or live).
        store_id: The store sales are made in.
        webhook_secrets: The signing secrets of the store's webhooks.
        api_base: Another address for the API (a test server); ``None`` is Lemon Squeezy itself.
        one_off_variant_id: The variant one-off payments are sold as (at a custom price); by
            default the store's first published variant that is not a subscription.
        plan_variants: Plan id or plan name -> variant id, for plans that catalog sync should
            link to a variant explicitly instead of by matching name, price and interval.
        pause_mode: How a paused subscription behaves: ``void`` (no service, no invoices) or
            ``free`` (service goes on, nothing is collected).
    """

    api_key: SecretStr
    store_id: str
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    api_base: HttpUrl | None = None
    one_off_variant_id: str | None = None
    plan_variants: dict[str, str] = Field(default_factory=dict)
    pause_mode: Literal["void", "free"] = "void"

    _split = field_validator("webhook_secrets", mode="before")(_split_secrets)


class FakeProviderSettings(_Section):
    """The in-process fake provider for tests and demos; refused in production.

    Attributes:
        webhook_secret: Secret of the ``Fake-Signature`` HMAC; events are signed with it.
        previous_webhook_secrets: Secrets still accepted on deliveries while a rotation is under
            way (comma-separated or a JSON list in the environment); never used to sign.
        auto_deliver: Deliver each emitted event to the inbox at once (else only keep it in
            ``sent_events``).
    """

    webhook_secret: SecretStr
    previous_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    auto_deliver: bool = True

    _split = field_validator("previous_webhook_secrets", mode="before")(_split_secrets)


class ManualProviderSettings(_Section):
    """Offline payments (cash, check, bank transfer) recorded by an admin. On by default."""

    enabled: bool = True


class SellerSettings(_Section):
    """Who sells: printed on every invoice, and the country whose rules apply.

    Attributes:
        legal_name: The seller's registered name.
        address_lines: The postal address, one line each.
        country: The member state the seller is established in (ISO 3166-1, ``GR`` for Greece).
        vat_number: The seller's own VAT number, printed on invoices.
        email: A contact address printed on invoices.
    """

    legal_name: str = Field(min_length=1, max_length=200)
    address_lines: list[str] = Field(default_factory=list)
    country: str
    vat_number: str | None = None
    email: str | None = None

    @field_validator("country")
    @classmethod
    def _member_state(cls, value: str) -> str:
        from .tax.rates import EU_MEMBER_STATES

        code = value.strip().upper()
        if code not in EU_MEMBER_STATES:
            raise ValueError(f"seller country must be an EU member state code, got {value!r}")
        return code


class VIESSettings(_Section):
    """The EU's VIES service, which confirms VAT numbers.

    Attributes:
        enabled: Check numbers at all; off, every number stays ``unverified`` (taxed as a consumer).
        base_url: Address of VIES's REST interface.
        timeout_seconds: How long one check may take before it counts as "unavailable".
        retry_after_seconds: When a number VIES could not check is tried again.
        recheck_after_days: When a confirmed or refused number is checked again.
    """

    enabled: bool = True
    base_url: HttpUrl = HttpUrl("https://ec.europa.eu/taxation_customs/vies/rest-api")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retry_after_seconds: int = Field(default=3600, ge=1)
    recheck_after_days: int = Field(default=30, ge=1)


class TaxSettings(_Section):
    """EU VAT and invoice documents. Without ``seller`` no tax is computed.

    Attributes:
        seller: The seller's legal details; required for tax and invoice documents.
        prices_include_tax: Plan and one-off prices are gross (tax included) rather than net.
        invoice_number_format: Format of the gap-free invoice number; ``{number}`` is the
            sequence value, ``{year}`` the year the invoice is finalised.
        locale: How amounts are written on invoice documents (``en``, ``de``, ``fr`` ...).
        reduced_rates: Reduced rates per product tax category: ``{category: {country: rate}}``
            in percent; a country missing from a category pays its standard rate.
        vies: The VAT number checks.
    """

    seller: SellerSettings | None = None
    prices_include_tax: bool = False
    invoice_number_format: str = "INV-{number:06d}"
    locale: str = "en"
    reduced_rates: dict[str, dict[str, Decimal]] = Field(default_factory=dict)
    vies: VIESSettings = Field(default_factory=VIESSettings)

    @field_validator("invoice_number_format")
    @classmethod
    def _number_format(cls, value: str) -> str:
        try:
            sample = value.format(number=1, year=2000)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"invoice_number_format may use only {{number}} and {{year}}: {exc}") from None
        if sample == value.format(number=2, year=2000) or len(sample) > 40:
            raise ValueError("invoice_number_format must contain {number} and stay within 40 characters")
        return value

    @field_validator("reduced_rates")
    @classmethod
    def _rates(cls, value: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        for category, rates in value.items():
            for country, rate in rates.items():
                if not Decimal(0) <= rate < Decimal(100):
                    raise ValueError(f"reduced rate {category}/{country} must be within 0 and 100: {rate}")
        return value


class PaymentsSettings(BaseSettings):
    """Every setting of the library in one object.

    Example:
        ``PaymentsSettings(database={"url": "sqlite+aiosqlite:///./pay.db"},
        auth={"jwt_secret": "..."}, fake={"webhook_secret": "..."})``
    """

    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        # Errors of the model validators would otherwise echo the raw input, secrets included.
        hide_input_in_errors=True,
    )

    environment: Environment = "development"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    default_currency: str = "USD"
    default_provider: str | None = None
    auth: AuthSettings = Field(default_factory=AuthSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    provider_calls: ProviderCallSettings = Field(default_factory=ProviderCallSettings)
    stripe: StripeSettings | None = None
    paypal: PayPalSettings | None = None
    lemonsqueezy: LemonSqueezySettings | None = None
    fake: FakeProviderSettings | None = None
    manual: ManualProviderSettings | None = Field(default_factory=ManualProviderSettings)
    tax: TaxSettings = Field(default_factory=TaxSettings)
    allowed_redirect_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Origins (scheme://host[:port]) that success_url, cancel_url and the portal return_url may "
            "point to, besides the origin of the request the router serves; env: comma-separated."
        ),
    )

    @field_validator("allowed_redirect_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        value = _split_secrets(value)
        if not isinstance(value, list):
            return value
        origins = []
        for item in value:
            origin = origin_of(item) if isinstance(item, str) else None
            if origin is None or origin_of(item.rstrip("/")) != item.strip().rstrip("/").lower():
                raise ValueError(
                    f"allowed_redirect_origins: {item!r} is not an origin like https://shop.example"
                )
            origins.append(origin)
        return origins

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_environment_variables(cls, data: Any) -> Any:
        # Keyword arguments and .env entries are checked by extra="forbid"; a misspelled
        # PAYMENTS_* environment variable would otherwise be silently ignored. A subclass that
        # leaves the environment out of its sources (settings_customise_sources) never reads it.
        if not cls._reads_environment():
            return data
        prefix = str(cls.model_config.get("env_prefix") or "PAYMENTS_").upper()
        known = set(cls.model_fields)
        unknown = sorted(
            name
            for name in os.environ
            if name.upper().startswith(prefix) and name[len(prefix) :].lower().split("__", 1)[0] not in known
        )
        if unknown:
            raise ValueError(
                f"unknown setting(s) in the environment: {', '.join(unknown)}; "
                f"known sections and keys: {', '.join(sorted(known))}"
            )
        return data

    @classmethod
    def _reads_environment(cls) -> bool:
        environment = EnvSettingsSource(cls)
        sources = cls.settings_customise_sources(
            cls,
            init_settings=InitSettingsSource(cls, init_kwargs={}),
            env_settings=environment,
            dotenv_settings=DotEnvSettingsSource(cls),
            file_secret_settings=SecretsSettingsSource(cls),
        )
        return any(source is environment for source in sources)

    @field_validator("default_currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        try:
            return normalize_currency(value)
        except UnknownCurrencyError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _safe_for_environment(self) -> PaymentsSettings:
        if self.environment == "production":
            if self.fake is not None:
                raise ValueError("the fake provider cannot be enabled when environment is 'production'")
            if self.auth.mode == "none":
                raise ValueError("auth.mode='none' is for demos only and is refused in production")
        # default_provider is checked by the router, which knows the host's own adapters too
        # (PaymentsRouter(providers=[...]) may pass one called "stripe", say).
        return self

    @property
    def should_create_tables(self) -> bool:
        """Whether start-up creates missing tables (see :attr:`DatabaseSettings.create_tables`)."""
        if self.database.create_tables is not None:
            return self.database.create_tables
        return self.environment != "production"
