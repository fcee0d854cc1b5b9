"""Xinference embedding models: the context size is read from the running model.

``POST {server_url}/v1/embeddings`` is OpenAI's (the ``openai_embedding`` family; the wire model is
the ``model_uid``).  The longest input comes from ``GET /v1/models/{model_uid}``: an embedding
model's description carries ``max_tokens`` (:mod:`arun.protocols.xinference`), which Dify's
Xinference provider reads as the context size (512 when absent); texts longer than that are cut
before they are sent.  One text per request, as in Dify.  A uid that names a model of another
type is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.errors import CredentialsValidateFailedError, InvokeError
from arun.families.openai_embedding import OpenAIEmbedding
from arun.protocols.openai_chat import classify_error
from arun.protocols.xinference import (
    check_model_uid,
    model_path,
    parse_model_description,
)

__all__ = ["XinferenceEmbedding"]

_DEFAULT_CONTEXT = 512


class XinferenceEmbedding(OpenAIEmbedding):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        uid = check_model_uid(credentials.get("model_uid"))
        endpoint = self.endpoint
        try:
            resp = await self.http.request(
                "GET",
                endpoint.url(credentials, None, model_path(uid)),
                headers=endpoint.headers(credentials, content_type=None),
                error_mapper=self.error_mapper(classify_error),
            )
        except InvokeError as exc:
            if exc.model is None:
                exc.model = model
            raise
        info = parse_model_description(self.provider_name, resp.body)
        if info.model_type is not None and info.model_type.lower() != "embedding":
            raise CredentialsValidateFailedError(
                f"Xinference model {uid!r} is a {info.model_type} model, not an embedding model"
            )
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: info.max_tokens or _DEFAULT_CONTEXT,
                ModelPropertyKey.MAX_CHUNKS.value: 1,
            },
            parameter_rules=[],
        )
