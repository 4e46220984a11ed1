"""``POST /webhooks/{provider}``: the provider-facing inbox endpoint."""

import json
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request, Response

from ...webhooks.inbox import DeliveryResult
from ..problems import problem_responses

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["add_routes", "answer_body"]

_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "received": {"type": "boolean", "const": True},
        "event_id": {"type": "string"},
        "status": {"type": "string", "enum": ["processed", "ignored", "failed", "duplicate"]},
    },
    "required": ["received", "event_id", "status"],
}


def answer_body(result: DeliveryResult) -> bytes:
    """The endpoint's JSON answer, encoded as FastAPI's ``JSONResponse`` encodes the same dict
    (compact separators, UTF-8, no ASCII escaping), without the response model's validation."""
    answer = {"received": True, "event_id": result.event_id, "status": result.status}
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def add_routes(router: APIRouter, payments: "PaymentsRouter") -> None:
    """Add the webhook endpoint to ``router`` itself (a ``ProblemRoute`` router).

    Not through an included router of its own: FastAPI walks every level of included routers
    on each request, and providers re-deliver events by the thousand.
    """
    limit = payments.settings.webhooks.max_body_bytes

    @router.post(
        "/webhooks/{provider}",
        name="payments:webhook",
        tags=["webhooks"],
        responses={
            200: {"description": "Received", "content": {"application/json": {"schema": _ANSWER_SCHEMA}}},
            **problem_responses(400, 404, 413),
        },
    )
    async def receive_webhook(provider: str, request: Request) -> Response:
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
            if chunk:
                chunks.append(chunk)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        # The headers as received (a case-insensitive mapping that keeps repeated headers, so a
        # signature header sent twice with different values is refused, not the last one taken).
        result = await payments.inbox.receive(provider, request.headers, body)
        return Response(answer_body(result), media_type="application/json")
