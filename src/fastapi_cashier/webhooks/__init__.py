"""The webhook inbox: verify, store once, apply in order, audit, then run hooks."""

from .inbox import DeliveryResult, WebhookInbox

__all__ = ["DeliveryResult", "WebhookInbox"]
