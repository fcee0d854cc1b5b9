"""The OpenAI embeddings family: ``POST /embeddings`` (OpenAI, Jina, every compatible server).

Options (``model_types.text-embedding.options`` in the ``arun:`` block):

* ``encoding_format``: ``base64`` (packed float32, what the official SDK asks for), ``float``
  or ``null`` (leave the field out); a caller may ask for another one per call with
  ``extra_body={"encoding_format": "float"}`` — both answers decode;
* ``tasks`` + ``task_models``: task-aware models (Jina v3/v4) get ``task`` by input type,
  e.g. ``{document: retrieval.passage, query: retrieval.query}``; ``task_field`` names the body
  field it goes in when the provider spells it differently (NVIDIA: ``input_type``);
* ``body_credentials``: body fields read from credentials,
  ``{dimensions: {credential: dimensions, type: int}, late_chunking: {credential: late_chunking, type: bool}}``;
* ``customizable_defaults``: ``context_size`` / ``max_chunks`` of user-added models.

``query_prefix`` / ``document_prefix`` credentials (the compatible form's) are prepended by
input type when set.

Quirk: ``no_user`` — the server refuses a ``user`` field (Mistral: 422 ``extra_forbidden``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.families.base import FamilyModel
from arun.families.helpers import (
    cred_flag,
    cred_int,
    cred_text,
    price_config,
    validate_by,
)
from arun.model_types.call_options import current_extras
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_embedding_body, parse_embedding_response

__all__ = ["OpenAIEmbedding", "body_from_credentials"]


def body_from_credentials(spec: Mapping[str, Any], credentials: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {credential, type}}`` -> the body fields whose credentials are set."""
    out: dict[str, Any] = {}
    for field, rule in spec.items():
        if not isinstance(rule, Mapping):
            continue
        name = str(rule.get("credential") or field)
        kind = rule.get("type", "string")
        if kind == "int":
            if cred_text(credentials, name) is not None:
                out[field] = cred_int(credentials, name, 0)
        elif kind == "bool":
            if cred_flag(credentials, name):
                out[field] = True
        else:
            value = cred_text(credentials, name)
            if value is not None:
                out[field] = value
    return out


class OpenAIEmbedding(FamilyModel, TextEmbeddingModel):
    family = "openai_embedding"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        base = self.base_model_schema(model, credentials)
        if base is not None or not self.builds_schemas:
            return base
        defaults = self.options.get("customizable_defaults") or {}
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", int(defaults.get("context_size", 4096))),
                ModelPropertyKey.MAX_CHUNKS.value: cred_int(credentials, "max_chunks", int(defaults.get("max_chunks", 1))),
            },
            parameter_rules=[],
            pricing=price_config(credentials, output=False),
        )

    def _task(self, model: str, credentials: Mapping[str, Any], input_type: EmbeddingInputType) -> str | None:
        task = cred_text(credentials, "task")
        if task:
            return task
        tasks = self.options.get("tasks")
        models = self.options.get("task_models") or ()
        if isinstance(tasks, Mapping) and any(model.startswith(str(m)) for m in models):
            value = tasks.get(input_type.value)
            return str(value) if value else None
        return None

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        prefix = credentials.get("query_prefix" if input_type is EmbeddingInputType.QUERY else "document_prefix")
        if isinstance(prefix, str) and prefix:
            texts = [prefix + t for t in texts]
        inputs = await self._truncate(schema, texts)
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        body_extra = body_from_credentials(self.options.get("body_credentials") or {}, credentials)
        task = self._task(model, credentials, input_type)
        if task:
            body_extra[str(self.options.get("task_field") or "task")] = task
        body_extra.update(endpoint.wire_parameters(model, {}))
        if extras is not None and extras.body:
            body_extra.update(extras.body)
        fmt = self.options.get("encoding_format", "float")
        resp = await self.http.request(
            "POST",
            url,
            headers=headers,
            data=build_embedding_body(
                wire_model, inputs, encoding_format=fmt, user=None if "no_user" in self.quirks else user, extra=body_extra
            ),
            error_mapper=self.error_mapper(classify_error),
        )
        parsed = parse_embedding_response(self.provider_name, resp.body, expected=len(inputs))
        tokens = parsed.tokens
        if tokens is None:
            tokens = sum(await self.get_num_tokens(model, credentials, inputs))
        return TextEmbeddingResult(
            model=parsed.model or model, embeddings=parsed.embeddings, usage=self._calc_response_usage(schema, tokens)
        )

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        await validate_by(lambda: self.require_schema(model, credentials), credentials, self.context.secret_fields)
        await validate_by(lambda: self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT), credentials, self.context.secret_fields)
