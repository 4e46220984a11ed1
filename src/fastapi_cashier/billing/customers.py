"""Customers: created from the signed-in principal on first use; billing profiles."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

from ..db.base_repository import loaded_detached, new_row_values
from ..db.model_repositories import BillingProfileRepository, CustomerAccountRepository, CustomerRepository
from ..db.models import BillingProfile, Customer, CustomerAccount
from ..errors import ConflictError, ValidationError
from ..providers.base import CustomerRef, PaymentProvider
from ..statuses import TaxIdStatus
from ..tax.vies import vat_country
from ._base import DomainService

__all__ = ["CustomerService"]

# EU VAT numbers start with the member state's code; Greece uses EL.
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)

PROFILE_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "state",
    "country",
    "tax_id",
)


class CustomerService(DomainService):
    """Customers and their billing profiles."""

    @property
    def _customers(self) -> CustomerRepository:
        return CustomerRepository(session=self.session)

    async def get(self, customer_id: uuid.UUID) -> Customer:
        """The customer with this id (``NotFoundError`` otherwise)."""
        return await self._customers.get(customer_id)

    async def find(self, external_id: str) -> Customer | None:
        """The customer for the host's user id, if there is one (a read, never a write).

        Raises:
            ValidationError: ``external_id`` is empty or longer than 255 characters.
        """
        if not external_id or len(external_id) > 255:
            raise ValidationError("external_id must be 1 to 255 characters", field="external_id")
        return await self._customers.get_by_external_id(external_id)

    async def get_or_create(
        self, external_id: str, *, email: str | None = None, name: str | None = None
    ) -> Customer:
        """The customer for the host's user id, created on first use.

        Two first requests racing both end with the same row: the loser of the unique
        constraint reads the winner's.
        """
        found = await self.find(external_id)
        if found is not None:
            return found
        try:
            return await self._customers.add(Customer(external_id=external_id, email=email, name=name))
        except ConflictError:
            winner = await self._customers.get_by_external_id(external_id)
            if winner is None:
                raise
            return winner

    async def create_if_missing(self, external_id: str, *, email: str | None = None) -> bool:
        """Store a customer for the host's user id unless one exists; whether this call stored it.

        One statement that cannot fail on the unique ``external_id``: ``INSERT ... ON CONFLICT
        DO NOTHING`` on SQLite and PostgreSQL, ``INSERT IGNORE`` on MariaDB/MySQL. Two first
        requests racing both succeed: the second waits for the first's row (or finds it) and
        inserts nothing. Read the customer with :meth:`find` after the commit, or use
        :meth:`store_if_missing`, which gives it.

        Raises:
            ValidationError: ``external_id`` is empty or longer than 255 characters.
        """
        return await self.store_if_missing(external_id, email=email) is not None

    async def store_if_missing(self, external_id: str, *, email: str | None = None) -> Customer | None:
        """:meth:`create_if_missing`, answering the customer this call stored (``None`` when one
        existed), with every column as stored: the whole row, defaults included, is computed
        here and inserted, so nothing needs reading back. Once this session is closed, the
        customer can be added to another session (which sees the committed row) without a
        statement.

        Raises:
            ValidationError: ``external_id`` is empty or longer than 255 characters.
        """
        if not external_id or len(external_id) > 255:
            raise ValidationError("external_id must be 1 to 255 characters", field="external_id")
        customer = Customer(external_id=external_id, email=email)
        dialect = self.session.get_bind().dialect.name
        stmt: Any
        if dialect == "postgresql":
            stmt = postgresql.insert(Customer).on_conflict_do_nothing(index_elements=["external_id"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(Customer).on_conflict_do_nothing(index_elements=["external_id"])
        elif dialect in ("mysql", "mariadb"):
            # The row's other values cannot fail (the caller checked the email's length), so
            # IGNORE only skips the duplicate external_id.
            stmt = sa.insert(Customer).prefix_with("IGNORE")
        else:
            if await self._customers.get_by_external_id(external_id) is not None:
                return None
            try:
                return await self._customers.add(customer)
            except ConflictError:
                return None
        values = new_row_values(customer)
        result = await self.session.execute(stmt.values(values))
        if not getattr(result, "rowcount", 0):
            return None
        return loaded_detached(customer, values)

    async def update(
        self, customer: Customer, *, email: str | None = None, name: str | None = None
    ) -> Customer:
        """Change the customer's email or name (``None`` leaves a field as it is)."""
        if email is not None:
            customer.email = email
        if name is not None:
            customer.name = name
        await self._customers.flush()
        return customer

    async def billing_profile(self, customer: Customer) -> BillingProfile | None:
        """The customer's billing profile, if one was saved."""
        return await BillingProfileRepository(session=self.session).for_customer(customer.id)

    async def save_billing_profile(self, customer: Customer, values: dict[str, Any]) -> BillingProfile:
        """Create or replace the billing profile. An EU VAT id is checked for its format, then
        with VIES when tax is configured (``tax.seller``).

        VIES being unavailable never refuses the profile: it is saved ``unverified`` and checked
        again later. A tax exemption is an admin's decision (:meth:`set_tax_exemption`); saving
        the profile keeps it.

        Raises:
            ValidationError: an unknown country code, a malformed EU VAT number, a VAT number of
                another country than ``country``, or ``tax_exempt`` asked for by the customer.
        """
        if values.pop("tax_exempt", False):
            raise ValidationError(
                "a tax exemption is granted by an admin, not with the billing profile", field="tax_exempt"
            )
        country = values.get("country")
        if country is not None:
            country = str(country).strip().upper()
            if len(country) != 2 or not country.isalpha() or not country.isascii():
                raise ValidationError("country must be a two-letter ISO 3166-1 code", field="country")
            values["country"] = country
        tax_id = values.get("tax_id")
        if tax_id:
            tax_id = str(tax_id).strip().replace(" ", "").upper()
            values["tax_id"] = tax_id
            if country in EU_COUNTRIES:
                try:
                    eu_vat.validate(tax_id)
                except StdnumValidationError as exc:
                    raise ValidationError(
                        f"tax_id is not a valid EU VAT number: {exc}", field="tax_id"
                    ) from None
                if vat_country(tax_id) != country:
                    raise ValidationError(
                        f"tax_id is a VAT number of {vat_country(tax_id)}, not of {country}", field="tax_id"
                    )
        else:
            values["tax_id"] = None
        # VIES is asked before any row is read or locked: it may take seconds.
        result = None
        if tax_id and self.svc.tax_ids.wants_check(tax_id):
            result = await self.svc.tax_ids.client().check(str(tax_id))
        terms = await self.svc.tax.buyer_terms(customer.id)
        repo = BillingProfileRepository(session=self.session)
        profile = await repo.for_customer(customer.id)
        if profile is None:
            profile = BillingProfile(customer_id=customer.id, tax_exempt=False)
            self.session.add(profile)
        if profile.tax_id != values["tax_id"]:
            profile.tax_id_status = TaxIdStatus.UNVERIFIED
            profile.tax_id_checked_at = None
            profile.tax_id_consultation_number = None
            profile.tax_id_next_check_at = None
        for name in PROFILE_FIELDS:
            setattr(profile, name, values.get(name))
        if result is not None:
            self.svc.tax_ids.apply(profile, result)
        await repo.flush()
        if await self.svc.tax.buyer_terms(customer.id) != terms:
            # Other VAT from now on (another country, a number VIES confirmed): providers charge it.
            await self.svc.tax.sync_provider_rates(customer.id)
        return profile

    async def set_tax_exemption(
        self, customer_id: uuid.UUID, *, exempt: bool, reason: str | None
    ) -> BillingProfile:
        """An admin exempts a customer from VAT (``reason`` is printed on invoices) or lifts it.

        Raises:
            ValidationError: an exemption without a reason.
        """
        reason = (reason or "").strip() or None
        if exempt and reason is None:
            raise ValidationError("a tax exemption needs its reason", field="reason")
        customer = await self.get(customer_id)
        terms = await self.svc.tax.buyer_terms(customer.id)
        repo = BillingProfileRepository(session=self.session)
        profile = await repo.for_customer(customer.id, for_update=True)
        if profile is None:
            profile = BillingProfile(customer_id=customer.id)
            self.session.add(profile)
        profile.tax_exempt = exempt
        profile.tax_exempt_reason = reason if exempt else None
        await repo.flush()
        if await self.svc.tax.buyer_terms(customer.id) != terms:
            await self.svc.tax.sync_provider_rates(customer.id)
        return profile

    def reference(
        self, customer: Customer, provider_customer_id: str | None = None, *, tax_id: str | None = None
    ) -> CustomerRef:
        """The customer as a provider request carries it."""
        return CustomerRef(
            id=customer.id,
            external_id=customer.external_id,
            email=customer.email,
            name=customer.name,
            provider_customer_id=provider_customer_id,
            tax_id=tax_id,
        )

    async def provider_customer_id(self, customer: Customer, provider: PaymentProvider) -> str | None:
        """The customer's id at ``provider``, created there on first use; ``None`` where the
        provider has no customer object (PayPal, the manual provider), asked again next time.

        Call outside a transaction that holds locks: this may call the provider. The provider
        call is keyed by the customer id, so a retry after a crash does not create a second one.
        """
        accounts = CustomerAccountRepository(session=self.session)
        account = await accounts.for_customer(customer.id, provider.name)
        if account is not None:
            return account.provider_customer_id
        profile = await self.billing_profile(customer)
        provider_id = await provider.create_customer(
            self.reference(customer, tax_id=profile.tax_id if profile is not None else None),
            idempotency_key=f"customer-{customer.id}-{provider.name}",
        )
        if provider_id is None:
            return None
        try:
            await accounts.add(
                CustomerAccount(
                    customer_id=customer.id, provider=provider.name, provider_customer_id=provider_id
                )
            )
        except ConflictError:
            existing = await accounts.for_customer(customer.id, provider.name)
            if existing is None:
                raise
            return existing.provider_customer_id
        return provider_id
