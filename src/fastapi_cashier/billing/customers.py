"""Customers: created from the signed-in principal on first use; billing profiles."""

from __future__ import annotations

import uuid
from typing import Any

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

from ..db.models import BillingProfile, Customer, CustomerAccount
from ..db.repositories import BillingProfileRepository, CustomerAccountRepository, CustomerRepository
from ..errors import ConflictError, ValidationError
from ..providers.base import CustomerRef, PaymentProvider
from ..statuses import TaxIdStatus
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
    "tax_exempt",
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
        """Create or replace the billing profile. An EU VAT id is checked for its format.

        Raises:
            ValidationError: an unknown country code or a malformed EU VAT number.
        """
        country = values.get("country")
        if country is not None:
            country = str(country).strip().upper()
            if len(country) != 2 or not country.isalpha() or not country.isascii():
                raise ValidationError("country must be a two-letter ISO 3166-1 code", field="country")
            values["country"] = country
        tax_id = values.get("tax_id")
        status = TaxIdStatus.UNVERIFIED
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
        repo = BillingProfileRepository(session=self.session)
        profile = await repo.for_customer(customer.id)
        if profile is None:
            profile = BillingProfile(customer_id=customer.id)
            self.session.add(profile)
        for name in PROFILE_FIELDS:
            setattr(profile, name, values.get(name, False if name == "tax_exempt" else None))
        profile.tax_id_status = status
        await repo.flush()
        return profile

    def reference(self, customer: Customer, provider_customer_id: str | None = None) -> CustomerRef:
        """The customer as a provider request carries it."""
        return CustomerRef(
            id=customer.id,
            external_id=customer.external_id,
            email=customer.email,
            name=customer.name,
            provider_customer_id=provider_customer_id,
        )

    async def provider_customer_id(self, customer: Customer, provider: PaymentProvider) -> str:
        """The customer's id at ``provider``, created there on first use.

        Call outside a transaction that holds locks: this may call the provider. The provider
        call is keyed by the customer id, so a retry after a crash does not create a second one.
        """
        accounts = CustomerAccountRepository(session=self.session)
        account = await accounts.for_customer(customer.id, provider.name)
        if account is not None:
            return account.provider_customer_id
        provider_id = await provider.create_customer(
            self.reference(customer), idempotency_key=f"customer-{customer.id}-{provider.name}"
        )
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
