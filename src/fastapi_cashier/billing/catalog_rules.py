"""The rules a catalog entry meets before it is stored: a plan's pricing fields, its features, names.

What makes a price a price (tiers ascending with an open last one, no tiers on a flat plan, a free
plan costs 0, ...) is :func:`~fastapi_cashier.pricing.validate_spec`'s to say; the catalog
asks it in its own words ("plan", JSON's ``null``). This module adds what only a stored plan needs:
input that may be of any type (a wrong one is a :class:`~fastapi_cashier.errors.ValidationError`
naming the field, not a ``TypeError``), the database's limits, billing intervals and trials, and
the features a plan gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ..currencies import normalize_currency
from ..db.models import Plan, PlanFeature, PlanTier
from ..errors import ValidationError
from ..pricing import MAX_QUANTITY, PriceSpec, Tier, storable_period_total, validate_spec
from ..providers.base import TierRef
from ..statuses import BillingInterval, PricingModel

__all__ = [
    "MAX_AMOUNT",
    "MAX_DESCRIPTION",
    "MAX_FEATURES",
    "MAX_FEATURE_TEXT",
    "MAX_INTERVAL_COUNT",
    "MAX_LIMIT",
    "MAX_NAME",
    "MAX_TIERS",
    "MAX_TRIAL_DAYS",
    "FeatureValue",
    "PlanPricing",
    "check_description",
    "check_features",
    "check_flag",
    "check_metadata",
    "check_name",
    "check_pricing",
    "feature_value",
]

#: A plan feature as given and shown: a flag, a numeric limit or a text value.
FeatureValue = bool | int | str

MAX_AMOUNT = 10**15
MAX_LIMIT = 2**63 - 1
MAX_TRIAL_DAYS = 730
MAX_TIERS = 100
MAX_FEATURES = 100
MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_FEATURE_TEXT = 500
# Month: at most a year, as asked of this module; the others at most three years (Stripe's limit).
MAX_INTERVAL_COUNT = {
    BillingInterval.DAY: 1095,
    BillingInterval.WEEK: 156,
    BillingInterval.MONTH: 12,
    BillingInterval.YEAR: 3,
}

_FEATURE_KEY = re.compile(r"[a-z0-9_.:-]{1,100}")
_ONE_TIME_MODELS = frozenset({PricingModel.FLAT, PricingModel.PER_UNIT})
_TIER_FIELDS = ("up_to", "unit_amount", "flat_amount")
_MINOR_UNITS = "a non-negative integer of minor units"

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class PlanPricing:
    """A plan's pricing fields, checked together; equal values, the same price.

    Attributes:
        pricing_model: How the plan is priced.
        unit_amount: Minor units; 0 where the tiers carry the amounts.
        currency: The upper-case ISO 4217 code.
        interval: The billing interval (``one_time`` for flat and per-unit plans only).
        interval_count: Intervals per billing cycle.
        trial_days: Free days before the first charge.
        tiers: The price tiers, in ascending ``up_to`` order.
    """

    pricing_model: PricingModel
    unit_amount: int
    currency: str
    interval: BillingInterval
    interval_count: int
    trial_days: int
    tiers: tuple[Tier, ...]

    @classmethod
    def of(cls, plan: Plan) -> PlanPricing:
        """The pricing fields of a stored plan."""
        return cls(
            pricing_model=PricingModel(plan.pricing_model),
            unit_amount=plan.unit_amount,
            currency=plan.currency,
            interval=BillingInterval(plan.interval),
            interval_count=plan.interval_count,
            trial_days=plan.trial_days,
            tiers=tuple(Tier(t.up_to, t.unit_amount, t.flat_amount) for t in plan.tiers),
        )

    def tier_rows(self) -> list[PlanTier]:
        """New rows for the tiers, numbered by position."""
        return [
            PlanTier(position=index, up_to=t.up_to, unit_amount=t.unit_amount, flat_amount=t.flat_amount)
            for index, t in enumerate(self.tiers)
        ]


# ---------------------------------------------------------------------- pricing


def check_pricing(
    *,
    pricing_model: Any,
    unit_amount: Any,
    currency: Any,
    interval: Any,
    interval_count: Any,
    trial_days: Any,
    tiers: Iterable[Mapping[str, Any] | Tier | TierRef] | None,
) -> PlanPricing:
    """The pricing fields, normalised and checked together.

    Raises:
        ValidationError: a refused value; ``field`` names it, and a tier's ``details["index"]``.
        UnknownCurrencyError: not an ISO 4217 code (``field`` ``"currency"``).
    """
    model = _member(PricingModel, pricing_model, "pricing_model")
    every = _member(BillingInterval, interval, "interval")
    code = normalize_currency(currency)
    amount = _integer(unit_amount, "unit_amount", _MINOR_UNITS, high=MAX_AMOUNT)
    trial = _integer(
        trial_days, "trial_days", f"an integer from 0 to {MAX_TRIAL_DAYS}", low=0, high=MAX_TRIAL_DAYS
    )
    count = _integer(interval_count, "interval_count", "a positive integer", low=1, high=MAX_LIMIT)
    if every is BillingInterval.ONE_TIME:
        if model not in _ONE_TIME_MODELS:
            raise ValidationError(
                f"a {model.value} plan needs a recurring interval; one_time is for flat and per_unit plans",
                field="interval",
            )
        if count != 1:
            raise ValidationError("interval_count must be 1 for a one_time plan", field="interval_count")
        if trial != 0:
            raise ValidationError("a one_time plan has no trial; trial_days must be 0", field="trial_days")
    elif count > MAX_INTERVAL_COUNT[every]:
        raise ValidationError(
            f"interval_count must be from 1 to {MAX_INTERVAL_COUNT[every]} for interval {every.value}",
            field="interval_count",
        )
    spec = PriceSpec(model, code, amount, _tiers(tiers))
    validate_spec(spec, noun="plan", null="null")
    if model is not PricingModel.METERED:
        # Bought at the largest quantity, the plan's period total must still fit the database.
        field = "tiers" if spec.tiers else "unit_amount"
        try:
            storable_period_total(spec, quantity=MAX_QUANTITY, field=field)
        except ValidationError as exc:
            raise ValidationError(
                f"at the largest quantity ({MAX_QUANTITY}) {exc.message}", field=field, details=exc.details
            ) from None
    return PlanPricing(model, amount, code, every, count, trial, spec.tiers)


def _tiers(tiers: Iterable[Mapping[str, Any] | Tier | TierRef] | None) -> tuple[Tier, ...]:
    """Given tiers as :class:`Tier` values of integers the database holds; the order is checked later."""
    given = list(tiers) if tiers is not None else []
    if len(given) > MAX_TIERS:
        raise ValidationError(f"a plan has at most {MAX_TIERS} tiers", field="tiers")
    return tuple(_tier(tier, index) for index, tier in enumerate(given))


def _tier(tier: Mapping[str, Any] | Tier | TierRef, index: int) -> Tier:
    if isinstance(tier, Tier | TierRef):
        values: Mapping[str, Any] = {
            "up_to": tier.up_to,
            "unit_amount": tier.unit_amount,
            "flat_amount": tier.flat_amount,
        }
    elif isinstance(tier, Mapping):
        unknown = sorted(str(key) for key in tier if key not in _TIER_FIELDS)
        if unknown:
            raise _tier_error(index, f"tiers[{index}] has unknown fields: {', '.join(unknown)}")
        values = tier
    else:
        raise _tier_error(index, f"tiers[{index}] must be an object with up_to, unit_amount and flat_amount")
    up_to = values.get("up_to")
    if up_to is not None:
        up_to = _tier_integer(up_to, index, "up_to", "a positive integer or null", MAX_LIMIT)
    return Tier(
        up_to,
        _tier_integer(values.get("unit_amount", 0), index, "unit_amount", _MINOR_UNITS, MAX_AMOUNT),
        _tier_integer(values.get("flat_amount", 0), index, "flat_amount", _MINOR_UNITS, MAX_AMOUNT),
    )


def _tier_integer(value: Any, index: int, name: str, what: str, high: int) -> int:
    return _integer(value, "tiers", what, high=high, label=f"tiers[{index}].{name}", details={"index": index})


def _tier_error(index: int, message: str) -> ValidationError:
    # The field is "tiers" (as in pricing.validate_spec); the index is in the details.
    return ValidationError(message, field="tiers", details={"index": index})


# ---------------------------------------------------------------------- features


def check_features(features: Mapping[str, FeatureValue] | None) -> list[PlanFeature]:
    """Feature rows: a flag as ``"true"``/``"false"`` in ``value``, an int in ``limit``, text in ``value``.

    Raises:
        ValidationError: a refused key or value (``field`` ``"features"``).
    """
    if features is None:
        return []
    if not isinstance(features, Mapping):
        raise ValidationError("features must be an object of key: value", field="features")
    if len(features) > MAX_FEATURES:
        raise ValidationError(f"a plan has at most {MAX_FEATURES} features", field="features")
    rows: list[PlanFeature] = []
    for key in sorted(features, key=str):
        if not isinstance(key, str) or not _FEATURE_KEY.fullmatch(key):
            raise ValidationError(
                f"feature key {key!r} must be 1 to 100 characters of a-z, 0-9, '_', '.', ':' and '-'",
                field="features",
            )
        raw = features[key]
        if isinstance(raw, bool):
            rows.append(PlanFeature(key=key, value="true" if raw else "false"))
        elif isinstance(raw, int):
            limit = _integer(
                raw, "features", "a non-negative integer", low=0, high=MAX_LIMIT, label=f"features.{key}"
            )
            rows.append(PlanFeature(key=key, limit=limit))
        elif isinstance(raw, str) and len(raw) <= MAX_FEATURE_TEXT:
            rows.append(PlanFeature(key=key, value=raw))
        else:
            raise ValidationError(
                f"features.{key} must be true/false, a non-negative integer limit, "
                f"or text of at most {MAX_FEATURE_TEXT} characters",
                field="features",
            )
    return rows


def feature_value(feature: PlanFeature) -> FeatureValue:
    """A stored feature as it was given: the limit, ``True``/``False`` for a flag, or the text."""
    if feature.limit is not None:
        return feature.limit
    if feature.value in ("true", "false"):
        return feature.value == "true"
    return feature.value or ""


# ---------------------------------------------------------------------- names, flags, metadata


def check_flag(value: Any, field: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (``ValidationError`` naming ``field`` otherwise)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be true or false", field=field)
    return value


def check_name(value: Any) -> str:
    """A product's or plan's name: 1 to ``MAX_NAME`` characters, not blank."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValidationError(f"name must be 1 to {MAX_NAME} characters, not blank", field="name")
    return value


def check_description(value: Any) -> str | None:
    """A product's description: ``None`` or text of at most ``MAX_DESCRIPTION`` characters."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_DESCRIPTION):
        raise ValidationError(
            f"description must be text of at most {MAX_DESCRIPTION} characters", field="description"
        )
    return value


def check_metadata(value: Any) -> dict[str, Any]:
    """A product's metadata: an object with string keys (``None`` is empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValidationError("metadata must be an object with string keys", field="metadata")
    return dict(value)


# ---------------------------------------------------------------------- values


def _member(enum: type[_E], value: Any, field: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValidationError(f"{field} must be one of: {allowed}", field=field) from None


def _integer(
    value: Any,
    field: str,
    what: str,
    *,
    low: int | None = None,
    high: int,
    label: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """An ``int`` (not a ``bool``) up to ``high`` and, if given, from ``low``.

    Amounts and tier bounds pass no ``low``: their lower limits are pricing's rules.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value > high
        or (low is not None and value < low)
    ):
        raise ValidationError(f"{label or field} must be {what}", field=field, details=details)
    return int(value)
