"""Speech to text through an OpenAI-compatible ``POST {endpoint_url}/audio/transcriptions`` (multipart).

Form fields: ``file``, ``model``, ``response_format=json`` and, when configured,
``language`` and ``prompt`` (the ``initial_prompt`` credential).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.model_types.speech2text import Speech2TextModel
from arun.protocols.openai_misc import build_transcription_form, parse_transcription, silent_wav
from arun.protocols.openai_chat import classify_error
from arun.providers.openai_api_compatible._common import (
    PROVIDER,
    auth_headers,
    require_endpoint,
    url_for,
    wire_model,
    wrap_validation,
)

_EXTENSIONS = "flac,mp3,mp4,mpeg,mpga,m4a,ogg,wav,webm"


def build_speech2text_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
        model_type=ModelType.SPEECH2TEXT,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        model_properties={
            ModelPropertyKey.FILE_UPLOAD_LIMIT.value: 25,
            ModelPropertyKey.SUPPORTED_FILE_EXTENSIONS.value: _EXTENSIONS,
        },
        parameter_rules=[],
    )


class OAICompatSpeech2TextModel(Speech2TextModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return build_speech2text_schema(model, credentials)

    async def _invoke(
        self, model: str, credentials: Mapping[str, Any], audio: bytes, filename: str | None, user: str | None
    ) -> str:
        fields: dict[str, Any] = {}
        language = credentials.get("language")
        if isinstance(language, str) and language.strip():
            fields["language"] = language.strip()
        prompt = credentials.get("initial_prompt")
        if isinstance(prompt, str) and prompt.strip():
            fields["prompt"] = prompt
        form = build_transcription_form(wire_model(model, credentials), audio, filename, fields=fields)
        resp = await self.http.request(
            "POST",
            url_for(credentials, "/audio/transcriptions"),
            headers=auth_headers(credentials, content_type=None),
            data=form,
            error_mapper=self.error_mapper(classify_error),
        )
        return parse_transcription(PROVIDER, resp.body, resp.headers.get("Content-Type"))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        require_endpoint(credentials)
        try:
            await self._invoke(model, credentials, silent_wav(), "ping.wav", None)
        except Exception as exc:
            raise wrap_validation(exc) from exc
