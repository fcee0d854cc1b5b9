"""Speech to text through an OpenAI-compatible ``POST {endpoint_url}/audio/transcriptions`` (multipart).

Form fields: ``file``, ``model``, ``response_format=json`` and, when configured,
``language`` and ``prompt`` (the ``initial_prompt`` credential).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.model_types.speech2text import Speech2TextModel
from arun.providers.openai_api_compatible._common import (
    auth_headers,
    error_mapper,
    parse_transcription,
    require_endpoint,
    silent_wav,
    url_for,
    wire_model,
    wrap_validation,
)

_EXTENSIONS = "flac,mp3,mp4,mpeg,mpga,m4a,ogg,wav,webm"
_MAGIC = ((b"RIFF", "wav"), (b"ID3", "mp3"), (b"\xff\xfb", "mp3"), (b"fLaC", "flac"), (b"OggS", "ogg"), (b"\x1aE\xdf\xa3", "webm"))


def _filename(filename: str | None, audio: bytes) -> tuple[str, str]:
    """A file name with an extension (servers pick the decoder by it) and its content type."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in name:
        ext = next((e for magic, e in _MAGIC if audio.startswith(magic)), "wav")
        name = f"{name or 'audio'}.{ext}"
    return name, mimetypes.guess_type(name)[0] or "application/octet-stream"


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
        import aiohttp

        name, content_type = _filename(filename, audio)
        form = aiohttp.FormData()
        form.add_field("file", audio, filename=name, content_type=content_type)
        form.add_field("model", wire_model(model, credentials))
        form.add_field("response_format", "json")
        language = credentials.get("language")
        if isinstance(language, str) and language.strip():
            form.add_field("language", language.strip())
        prompt = credentials.get("initial_prompt")
        if isinstance(prompt, str) and prompt.strip():
            form.add_field("prompt", prompt)
        resp = await self.http.request(
            "POST",
            url_for(credentials, "/audio/transcriptions"),
            headers=auth_headers(credentials, content_type=None),
            data=form,
            error_mapper=error_mapper(),
        )
        return parse_transcription(resp.body, resp.headers.get("Content-Type"))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        require_endpoint(credentials)
        try:
            await self._invoke(model, credentials, silent_wav(), "ping.wav", None)
        except Exception as exc:
            raise wrap_validation(exc) from exc
