"""OpenAI moderation: slices sent as an ``input`` list; flagged when any result is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.errors import CredentialsValidateFailedError
from arun.model_types.moderation import ModerationModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_moderation_body, parse_moderation_response
from arun.providers.openai._common import auth_headers, base_url


class OpenAIModerationModel(ModerationModel):
    async def _invoke(self, model: str, credentials: Mapping[str, Any], texts: list[str], user: str | None) -> bool:
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/moderations",
            headers=auth_headers(credentials),
            data=build_moderation_body(model, texts),
            error_mapper=self.error_mapper(classify_error),
        )
        return parse_moderation_response(self.provider_name, resp.body)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            await self.require_schema(model, credentials)
            await self._invoke(model, credentials, ["ping"], None)
        except Exception as exc:
            raise CredentialsValidateFailedError(str(exc) or type(exc).__name__) from exc
