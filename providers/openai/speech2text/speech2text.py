"""OpenAI speech to text (whisper): a multipart upload, a JSON transcript back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.errors import CredentialsValidateFailedError
from arun.model_types.speech2text import Speech2TextModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_transcription_form, parse_transcription, silent_wav
from arun.providers.openai._common import auth_headers, base_url


class OpenAISpeech2TextModel(Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], audio: bytes, filename: str | None, user: str | None
    ) -> str:
        form = build_transcription_form(model, audio, filename, response_format="json")
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/audio/transcriptions",
            headers=auth_headers(credentials, content_type=None),  # aiohttp sets the multipart boundary
            data=form,
            error_mapper=self.error_mapper(classify_error),
        )
        return parse_transcription(self.provider_name, resp.body, resp.headers.get("Content-Type"))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            await self.require_schema(model, credentials)
            await self._invoke(model, credentials, silent_wav(), "check.wav", None)
        except Exception as exc:
            raise CredentialsValidateFailedError(str(exc) or type(exc).__name__) from exc
