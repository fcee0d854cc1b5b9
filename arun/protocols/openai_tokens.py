"""OpenAI's prompt-token recipe for chat requests, over arun's messages and tools.

Offline (the encodings come from :mod:`arun.tokenizers`); used by the OpenAI chat family for
``get_num_tokens`` and as the usage fallback when an upstream reports no usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.tokenizers import _base_model, encoding_for_model, get_encoding

__all__ = ["num_tokens_from_messages", "num_tokens_for_tools"]




def _tool_calls_tokens(n: Callable[[str], int], tool_calls: Any) -> int:
    total = 0
    for call in tool_calls or ():
        if not isinstance(call, Mapping):
            continue
        for key, value in call.items():
            total += n(key)
            if key == "function" and isinstance(value, Mapping):
                for f_key, f_value in value.items():
                    total += n(f_key) + n(_stringify(f_value))
            else:
                total += n(key) + n(_stringify(value))
    return total


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _tool_function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    # Accept both {"name", "description", "parameters"} and the OpenAI wire
    # form {"type": "function", "function": {...}}.
    fn = tool.get("function")
    if isinstance(fn, Mapping) and "name" in fn:
        return fn
    return tool


def num_tokens_for_tools(tools: Sequence[Mapping[str, Any]] | None, encoding: str = "cl100k_base") -> int:
    """Tokens Dify charges for a tool schema, counted key by key.

    Per tool: the words ``type``, ``function``, ``name``, ``description`` and
    ``parameters`` plus the name and description; ``title`` and its value when
    present; ``type`` and the parameters' type; ``properties`` then, for each
    property, its name and, for each field, the field key plus either (enum)
    3 + value per member or the field key again + the value; ``required`` then
    3 + name per required field.
    """
    if not tools:
        return 0
    enc = get_encoding(encoding)

    def n(s: str) -> int:
        return len(enc.encode_ordinary(s)) if s else 0

    total = 0
    for tool in tools:
        fn = _tool_function(tool)
        total += n("type") + n("function")
        total += n("name") + n(_stringify(fn.get("name")))
        total += n("description") + n(_stringify(fn.get("description")))
        params = fn.get("parameters") or {}
        total += n("parameters")
        if "title" in params:
            total += n("title") + n(_stringify(params.get("title")))
        total += n("type") + n(_stringify(params.get("type")))
        properties = params.get("properties")
        if "properties" in params:
            total += n("properties")
            for prop_name, prop in (properties or {}).items():
                total += n(prop_name)
                if not isinstance(prop, Mapping):
                    continue
                for field_key, field_value in prop.items():
                    total += n(field_key)
                    if field_key == "enum":
                        for member in field_value or ():
                            total += 3 + n(_stringify(member))
                    else:
                        total += n(field_key) + n(_stringify(field_value))
        if "required" in params:
            total += n("required")
            for field in params.get("required") or ():
                total += 3 + n(_stringify(field))
    return total


def num_tokens_from_messages(
    model: str, messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool | Mapping[str, Any]] | None = None
) -> int:
    """Prompt tokens of a chat request to an OpenAI ``model``.

    OpenAI's recipe: each message costs 3 tokens of framing (4 for
    ``gpt-3.5-turbo-0301``) plus the tokens of every value (role, content,
    ...); a ``name`` adds 1 (-1 for ``-0301``, where the name replaces the
    role); list content counts its text parts only; ``tool_calls`` count each
    key and value of each call (see Dify); the reply is primed with 3 tokens.
    Tools are counted with :func:`num_tokens_for_tools`.  ``None`` values are
    skipped.  Unknown models use the gpt-3.5/gpt-4 constants.
    """
    base = _base_model(model)
    encoding = encoding_for_model(base)
    enc = get_encoding(encoding)

    def n(s: str) -> int:
        return len(enc.encode_ordinary(s)) if s else 0

    if base.startswith("gpt-3.5-turbo-0301"):
        per_message, per_name = 4, -1
    else:
        per_message, per_name = 3, 1

    total = 0
    for message in messages:
        total += per_message + n(message.role.value) + n(message.text())
        if message.name:
            total += n(message.name) + per_name
        calls = getattr(message, "tool_calls", None)
        if calls:
            total += _tool_calls_tokens(n, [msgspec.to_builtins(c) for c in calls])
    total += 3  # every reply is primed with <|start|>assistant<|message|>
    if tools:
        total += num_tokens_for_tools([t if isinstance(t, Mapping) else msgspec.to_builtins(t) for t in tools], encoding)
    return total
