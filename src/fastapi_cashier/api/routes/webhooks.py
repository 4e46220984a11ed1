"""``POST /webhooks/{provider}``: the provider-facing inbox endpoint."""

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request

from ..problems import ProblemRoute, problem_responses

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """The webhook endpoint; signatures are checked on the raw bytes."""
    router = APIRouter(route_class=ProblemRoute, tags=["webhooks"])
    limit = payments.settings.webhooks.max_body_bytes

    @router.post(
        "/webhooks/{provider}",
        name="payments:webhook",
        responses=problem_responses(400, 404, 413),
    )
    async def receive_webhook(provider: str, request: Request) -> dict[str, Any]:
        """Verify, store once and apply a provider's event. Duplicates answer 200 and change nothing."""
        payments.inbox.provider(provider)  # 404 before reading the body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(status_code=413, detail=f"webhook bodies are limited to {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(status_code=413, detail=f"webhook bodies are limited to {limit} bytes")
            chunks.append(chunk)
        result = await payments.inbox.receive(provider, dict(request.headers), b"".join(chunks))
        return {"received": True, "event_id": result.event_id, "status": result.status}

    return router
