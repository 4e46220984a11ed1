"""Tests for ``PaymentsSettings``: defaults, keyword arguments, environment, ``.env`` and validation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic
import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db import create_engine
from fastapi_cashier.settings import (
    AuthSettings,
    DatabaseSettings,
    FakeProviderSettings,
    ManualProviderSettings,
    PaymentsSettings,
    StripeSettings,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``PAYMENTS_*`` variable from the outside world and no stray ``.env`` file."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def refused(**kwargs: Any) -> str:
    """The text of the ``ValidationError`` raised for these keyword arguments."""
    with pytest.raises(pydantic.ValidationError) as info:
        PaymentsSettings(**kwargs)
    return str(info.value)


# -- defaults ----------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = PaymentsSettings()
    assert settings.environment == "development"
    assert settings.database.url == "sqlite+aiosqlite:///./payments.db"
    assert settings.database.create_tables is None
    assert settings.default_currency == "USD"
    assert settings.default_provider is None
    assert isinstance(settings.manual, ManualProviderSettings)
    assert settings.manual.enabled is True
    assert settings.fake is None
    assert settings.stripe is None
    assert settings.paypal is None
    assert settings.lemonsqueezy is None
    assert settings.manual is not None
    assert settings.manual.enabled is True
    assert settings.auth.mode == "jwt"
    assert settings.auth.jwt_algorithms == ["HS256"]


@pytest.mark.parametrize(
    ("environment", "create_tables", "expected"),
    [
        ("development", None, True),
        ("test", None, True),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
        ("test", False, False),
    ],
)
def test_should_create_tables(environment: str, create_tables: bool | None, expected: bool) -> None:
    settings = PaymentsSettings(
        environment=environment,
        database={"create_tables": create_tables},
    )
    assert settings.should_create_tables is expected


def test_manual_can_be_turned_off() -> None:
    auth = {"jwt_secret": "a-jwt-secret-long-enough-for-hs256-signing"}
    assert "manual" in PaymentsRouter(PaymentsSettings(auth=auth)).providers
    assert PaymentsRouter(PaymentsSettings(manual={"enabled": False}, auth=auth)).providers == {}
    assert PaymentsRouter(PaymentsSettings(manual=None, auth=auth)).providers == {}


def test_settings_are_frozen() -> None:
    settings = PaymentsSettings()
    with pytest.raises(pydantic.ValidationError):
        settings.environment = "production"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        settings.database.url = "sqlite+aiosqlite:///./other.db"  # type: ignore[misc]


# -- Python keyword arguments --------------------------------------------------------------------


def test_keyword_arguments_build_sections() -> None:
    settings = PaymentsSettings(
        database={"url": "sqlite+aiosqlite:///./pay.db"},
        auth={"jwt_secret": "s"},
        fake={"webhook_secret": "w"},
    )
    assert isinstance(settings.database, DatabaseSettings)
    assert settings.database.url == "sqlite+aiosqlite:///./pay.db"
    assert isinstance(settings.auth, AuthSettings)
    assert isinstance(settings.auth.jwt_secret, SecretStr)
    assert settings.auth.jwt_secret.get_secret_value() == "s"
    assert isinstance(settings.fake, FakeProviderSettings)
    assert isinstance(settings.fake.webhook_secret, SecretStr)
    assert settings.fake.webhook_secret.get_secret_value() == "w"
    assert settings.fake.auto_deliver is True


def test_secrets_do_not_appear_in_repr_or_str() -> None:
    settings = PaymentsSettings(
        auth={"jwt_secret": "jwt-secret-value-1234"},
        fake={"webhook_secret": "fake-secret-value-5678"},
        stripe={"api_key": "sk_test_secret_9012", "webhook_secrets": ["whsec_secret_3456"]},
        paypal={"client_id": "client-id", "client_secret": "paypal-secret-7890"},
        lemonsqueezy={"api_key": "ls-secret-2468", "store_id": "1"},
    )
    secrets = [
        "jwt-secret-value-1234",
        "fake-secret-value-5678",
        "sk_test_secret_9012",
        "whsec_secret_3456",
        "paypal-secret-7890",
        "ls-secret-2468",
    ]
    for text in (repr(settings), str(settings)):
        for secret in secrets:
            assert secret not in text
    # The values are still there for the code that needs them.
    assert settings.stripe is not None
    assert settings.stripe.api_key.get_secret_value() == "sk_test_secret_9012"


def test_secrets_do_not_appear_in_validation_errors() -> None:
    message = refused(
        environment="production",
        fake={"webhook_secret": "whsec_must_not_leak"},
        stripe={"api_key": "sk_live_must_not_leak"},
    )
    assert "fake provider cannot be enabled" in message
    assert "whsec_must_not_leak" not in message
    assert "sk_live_must_not_leak" not in message


# -- environment -------------------------------------------------------------------------------


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_ENVIRONMENT", "test")
    monkeypatch.setenv("PAYMENTS_DATABASE__URL", "postgresql+asyncpg://user:pw@db.example/pay")
    monkeypatch.setenv("PAYMENTS_DATABASE__POOL_SIZE", "7")
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", "env-jwt-secret")
    monkeypatch.setenv("PAYMENTS_FAKE__WEBHOOK_SECRET", "env-fake-secret")
    monkeypatch.setenv("PAYMENTS_DEFAULT_CURRENCY", "eur")
    settings = PaymentsSettings()
    assert settings.environment == "test"
    assert settings.database.url == "postgresql+asyncpg://user:pw@db.example/pay"
    assert settings.database.pool_size == 7
    assert settings.auth.jwt_secret is not None
    assert settings.auth.jwt_secret.get_secret_value() == "env-jwt-secret"
    assert settings.auth.configured is True
    assert settings.fake is not None
    assert settings.fake.webhook_secret.get_secret_value() == "env-fake-secret"
    assert settings.default_currency == "EUR"


@pytest.mark.parametrize("raw", ["whsec_a,whsec_b", " whsec_a , whsec_b ", '["whsec_a","whsec_b"]'])
def test_stripe_webhook_secrets_from_environment(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PAYMENTS_STRIPE__API_KEY", "sk_test_env")
    monkeypatch.setenv("PAYMENTS_STRIPE__WEBHOOK_SECRETS", raw)
    settings = PaymentsSettings()
    assert isinstance(settings.stripe, StripeSettings)
    assert settings.stripe.api_key.get_secret_value() == "sk_test_env"
    secrets = settings.stripe.webhook_secrets
    assert all(isinstance(secret, SecretStr) for secret in secrets)
    assert [secret.get_secret_value() for secret in secrets] == ["whsec_a", "whsec_b"]


def test_stripe_webhook_secrets_default_to_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_STRIPE__API_KEY", "sk_test_env")
    settings = PaymentsSettings()
    assert settings.stripe is not None
    assert settings.stripe.webhook_secrets == []


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PAYMENTS_DEFAULT_CURRENCY=JPY\n", encoding="utf-8")
    assert PaymentsSettings().default_currency == "JPY"


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PAYMENTS_DEFAULT_CURRENCY=JPY\n", encoding="utf-8")
    monkeypatch.setenv("PAYMENTS_DEFAULT_CURRENCY", "GBP")
    assert PaymentsSettings().default_currency == "GBP"


def test_keyword_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DEFAULT_CURRENCY", "GBP")
    assert PaymentsSettings(default_currency="CHF").default_currency == "CHF"


# -- validation --------------------------------------------------------------------------------


def test_unknown_currency_refused() -> None:
    message = refused(default_currency="ABC")
    assert "default_currency" in message
    assert "ABC" in message
    assert "ISO 4217" in message


def test_unknown_environment_refused() -> None:
    message = refused(environment="staging")
    assert "environment" in message
    assert "'development', 'test' or 'production'" in message


def test_production_refuses_fake_provider() -> None:
    message = refused(environment="production", fake={"webhook_secret": "w"})
    assert "fake provider" in message
    assert "production" in message
    # The same section is fine outside production.
    assert PaymentsSettings(environment="test", fake={"webhook_secret": "w"}).fake is not None


def test_production_refuses_auth_mode_none() -> None:
    message = refused(environment="production", auth={"mode": "none"})
    assert "auth.mode='none'" in message
    assert "production" in message
    assert PaymentsSettings(auth={"mode": "none"}).auth.mode == "none"


def test_production_with_safe_settings_is_accepted() -> None:
    settings = PaymentsSettings(environment="production", auth={"jwt_secret": "s"})
    assert settings.environment == "production"
    assert settings.should_create_tables is False


def test_default_provider_is_left_to_the_router() -> None:
    # The router knows the host's own adapters; a built-in name may be one of them.
    assert PaymentsSettings(default_provider="stripe").default_provider == "stripe"
    settings = PaymentsSettings(default_provider="fake", fake={"webhook_secret": "w"})
    assert settings.default_provider == "fake"


@pytest.mark.parametrize(
    "url",
    ["postgresql://user@localhost/pay", "sqlite:///x.db", "mysql+pymysql://user@localhost/pay"],
)
def test_sync_database_driver_refused(url: str) -> None:
    message = refused(database={"url": url})
    assert "database.url" in message
    assert "not an async driver" in message
    for driver in ("sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"):
        assert driver in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./x.db",
        "postgresql+asyncpg://user@localhost/pay",
        "mysql+aiomysql://user@localhost/pay",
        "mariadb+aiomysql://user@localhost/pay",
    ],
)
def test_async_database_drivers_accepted(url: str) -> None:
    assert PaymentsSettings(database={"url": url}).database.url == url


@pytest.mark.parametrize("algorithms", [["none"], ["HS256", "none"], []])
def test_unsafe_jwt_algorithms_refused(algorithms: list[str]) -> None:
    message = refused(auth={"jwt_algorithms": algorithms})
    assert "auth.jwt_algorithms" in message
    assert "non-empty subset" in message


def test_pool_size_zero_refused() -> None:
    message = refused(database={"pool_size": 0})
    assert "database.pool_size" in message
    assert "greater than or equal to 1" in message


@pytest.mark.parametrize(
    ("kwargs", "location"),
    [
        ({"database": {"uri": "sqlite+aiosqlite:///./x.db"}}, "database.uri"),
        ({"auth": {"secret": "s"}}, "auth.secret"),
        ({"fake": {"webhook_secret": "w", "signing_key": "k"}}, "fake.signing_key"),
        ({"stripe": {"api_key": "sk", "webhook_secret": "whsec"}}, "stripe.webhook_secret"),
    ],
)
def test_unknown_key_in_a_section_refused(kwargs: dict[str, Any], location: str) -> None:
    message = refused(**kwargs)
    assert location in message
    assert "Extra inputs are not permitted" in message


def test_unknown_section_env_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DATABASE__URI", "sqlite+aiosqlite:///./x.db")
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        PaymentsSettings()


def test_required_provider_fields() -> None:
    assert "stripe.api_key" in refused(stripe={})
    assert "fake.webhook_secret" in refused(fake={})


# -- auth --------------------------------------------------------------------------------------


def test_auth_configured() -> None:
    assert AuthSettings().configured is False
    assert AuthSettings(jwt_secret=SecretStr("s")).configured is True
    assert (
        AuthSettings(jwt_public_key="-----BEGIN PUBLIC KEY-----\n...", jwt_algorithms=["RS256"]).configured
        is True
    )
    assert PaymentsSettings().auth.configured is False
    assert PaymentsSettings(auth={"jwt_secret": "s"}).auth.configured is True


def test_lemonsqueezy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__API_KEY", "ls-key-1357")
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__STORE_ID", "91257")
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS", "new-secret,old-secret")
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__API_BASE", "http://127.0.0.1:8421/v1")
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__PLAN_VARIANTS", '{"Team monthly": "394420"}')
    monkeypatch.setenv("PAYMENTS_LEMONSQUEEZY__PAUSE_MODE", "free")

    section = PaymentsSettings().lemonsqueezy

    assert section is not None
    assert section.store_id == "91257"
    assert [secret.get_secret_value() for secret in section.webhook_secrets] == ["new-secret", "old-secret"]
    assert str(section.api_base) == "http://127.0.0.1:8421/v1"
    assert section.plan_variants == {"Team monthly": "394420"}
    assert (section.pause_mode, section.one_off_variant_id) == ("free", None)
    assert "ls-key-1357" not in repr(section)


def test_lemonsqueezy_pause_mode_is_void_or_free() -> None:
    with pytest.raises(pydantic.ValidationError, match="pause_mode"):
        PaymentsSettings(lemonsqueezy={"api_key": "k", "store_id": "1", "pause_mode": "later"})


# ---------------------------------------------------------------------- unknown keys and redirect origins


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"databse": {"url": "sqlite+aiosqlite:///x.db"}}, "databse"),
        ({"database": {"urll": "sqlite+aiosqlite:///x.db"}}, "urll"),
        ({"webhooks": {"tolerance": 10}}, "tolerance"),
        ({"default_currencey": "EUR"}, "default_currencey"),
    ],
)
def test_a_misspelled_section_or_key_raises_naming_it(values: dict[str, object], named: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=named):
        PaymentsSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        ("PAYMENTS_DATABSE__URL", "PAYMENTS_DATABSE__URL"),
        ("PAYMENTS_DATABASE__URLL", "database.urll"),
        ("PAYMENTS_JWT_SECRET", "PAYMENTS_JWT_SECRET"),
        ("payments_defualt_provider", "payments_defualt_provider"),
    ],
)
def test_a_misspelled_environment_variable_raises_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, named: str
) -> None:
    monkeypatch.setenv(variable, "x")
    with pytest.raises(pydantic.ValidationError, match=named):
        PaymentsSettings()


class _KeywordOnlySettings(PaymentsSettings):
    """A subclass that turns the environment and ``.env`` sources off, as the demo and bench/ do."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def test_a_subclass_without_the_environment_source_ignores_unknown_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMENTS_DATABSE__URL", "x")
    monkeypatch.setenv("PAYMENTS_DEFAULT_CURRENCY", "EUR")
    settings = _KeywordOnlySettings(default_currency="JPY")
    assert settings.default_currency == "JPY"
    # The base class still reads the environment, and still refuses the misspelled variable.
    with pytest.raises(pydantic.ValidationError, match="PAYMENTS_DATABSE__URL"):
        PaymentsSettings()


def test_redirect_origins_come_from_the_environment_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_ALLOWED_REDIRECT_ORIGINS", "https://Shop.example, http://localhost:8000")
    assert PaymentsSettings().allowed_redirect_origins == ["https://shop.example", "http://localhost:8000"]


@pytest.mark.parametrize(
    "origin", ["https://shop.example/path", "shop.example", "javascript:alert(1)", "ftp://x"]
)
def test_a_redirect_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="allowed_redirect_origins"):
        PaymentsSettings(allowed_redirect_origins=[origin])


def test_pool_pre_ping_is_opt_in_and_connections_are_recycled() -> None:
    url = "postgresql+asyncpg://user@127.0.0.1:1/none"
    default = create_engine(DatabaseSettings(url=url))
    opted = create_engine(DatabaseSettings(url=url, pool_pre_ping=True, pool_recycle_seconds=60))
    assert default.pool._pre_ping is False
    assert default.pool._recycle == 1800
    assert opted.pool._pre_ping is True
    assert opted.pool._recycle == 60
