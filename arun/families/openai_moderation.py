"""The OpenAI moderations family: ``POST /moderations``; flagged when any result is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.families.base import FamilyModel
from arun.families.helpers import validate_by
from arun.model_types.call_options import current_extras
from arun.model_types.moderation import ModerationModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_moderation_body, parse_moderation_response

__all__ = ["OpenAIModeration"]


class OpenAIModeration(FamilyModel, ModerationModel):
    family = "openai_moderation"

    async def _invoke(self, model: str, credentials: Mapping[str, Any], texts: list[str], user: str | None) -> bool:
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        resp = await self.http.request(
            "POST",
            url,
            headers=headers,
            data=build_moderation_body(wire_model, texts),
            error_mapper=self.error_mapper(classify_error),
        )
        return parse_moderation_response(self.provider_name, resp.body)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        async def call() -> None:
            await self.require_schema(model, credentials)
            await self._invoke(model, credentials, ["ping"], None)

        await validate_by(call, credentials, self.context.secret_fields)
