"""VAT numbers confirmed by VIES: checked when a billing profile is saved and again on a schedule.

A check that VIES could not answer leaves the profile ``unverified`` (taxed as a consumer) and
schedules another attempt after ``tax.vies.retry_after_seconds``; an answer (valid or invalid)
is kept with its date and consultation number and checked again after
``tax.vies.recheck_after_days``. No row lock is held while VIES is asked.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from ..db.model_repositories import BillingProfileRepository
from ..db.models import BillingProfile
from ..statuses import TaxIdStatus
from ..tax.rates import EU_MEMBER_STATES
from ..tax.vies import VIESClient, VIESOutcome, VIESResult, vat_country
from ._base import DomainService, now

__all__ = ["TaxIdService"]


class TaxIdService(DomainService):
    """VIES checks of the customers' VAT numbers."""

    def client(self) -> VIESClient:
        """A VIES client with the seller's VAT number as the requester (for consultation numbers)."""
        tax = self.svc.settings.tax
        return VIESClient(
            tax.vies,
            requester_vat_number=tax.seller.vat_number if tax.seller is not None else None,
        )

    def wants_check(self, tax_id: str | None) -> bool:
        """Whether ``tax_id`` is checked with VIES: tax is on, VIES is on, an EU number."""
        tax = self.svc.settings.tax
        return bool(
            tax_id and tax.seller is not None and tax.vies.enabled and vat_country(tax_id) in EU_MEMBER_STATES
        )

    def apply(self, profile: BillingProfile, result: VIESResult) -> None:
        """Record a check on ``profile`` (whose ``tax_id`` is the number checked)."""
        vies = self.svc.settings.tax.vies
        if result.outcome is VIESOutcome.UNAVAILABLE:
            # An earlier answer about the same number stands; without one the number stays unverified.
            if profile.tax_id_checked_at is None:
                profile.tax_id_status = TaxIdStatus.UNVERIFIED
            profile.tax_id_next_check_at = now() + timedelta(seconds=vies.retry_after_seconds)
            return
        profile.tax_id_status = (
            TaxIdStatus.VALID if result.outcome is VIESOutcome.VALID else TaxIdStatus.INVALID
        )
        profile.tax_id_checked_at = result.checked_at
        profile.tax_id_consultation_number = result.consultation_number
        profile.tax_id_next_check_at = now() + timedelta(days=vies.recheck_after_days)

    async def recheck_due(self, *, limit: int = 50) -> dict[str, int]:
        """Check the VAT numbers whose next check is due; counts by outcome.

        Each profile is updated in a transaction of its own after VIES answered, and only if its
        number did not change meanwhile.
        """
        counts = {outcome.value: 0 for outcome in VIESOutcome}
        if self.svc.settings.tax.seller is None or not self.svc.settings.tax.vies.enabled:
            return counts
        rows = (
            await self.session.execute(
                sa.select(BillingProfile.id, BillingProfile.tax_id)
                .where(BillingProfile.tax_id_next_check_at <= now(), BillingProfile.tax_id.is_not(None))
                .order_by(BillingProfile.tax_id_next_check_at)
                .limit(limit)
            )
        ).all()
        await self.svc.commit()
        client = self.client()
        repo = BillingProfileRepository(session=self.session)
        for profile_id, tax_id in rows:
            if tax_id is None:
                continue
            result = await client.check(tax_id)
            counts[result.outcome.value] += 1
            profile = await repo.first(BillingProfile.id == profile_id, for_update=True)
            if profile is not None and profile.tax_id == tax_id:
                await self._apply_and_sync(profile, result)
            await self.svc.commit()
        return counts

    async def _apply_and_sync(self, profile: BillingProfile, result: VIESResult) -> None:
        """Record a check; when it changes the customer's VAT, tell the providers (after a commit)."""
        terms = await self.svc.tax.buyer_terms(profile.customer_id)
        self.apply(profile, result)
        await BillingProfileRepository(session=self.session).flush()
        if await self.svc.tax.buyer_terms(profile.customer_id) != terms:
            await self.svc.tax.sync_provider_rates(profile.customer_id)

    async def check_now(self, profile_id: uuid.UUID) -> BillingProfile:
        """Check one profile's number now (an admin's "check again")."""
        repo = BillingProfileRepository(session=self.session)
        profile = await repo.get(profile_id)
        tax_id = profile.tax_id
        if not self.wants_check(tax_id) or tax_id is None:
            return profile
        await self.svc.commit()
        result = await self.client().check(tax_id)
        profile = await repo.get(profile_id, for_update=True)
        if profile.tax_id == tax_id:
            await self._apply_and_sync(profile, result)
        return profile
