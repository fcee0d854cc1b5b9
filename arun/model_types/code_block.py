"""Dify's code-block mode: ``response_format`` JSON or XML on models without a native JSON mode.

The request asks for one fenced block (a system instruction, the opening fence
appended to the last user turn, the closing fences as stop words); the answer
is handed back without the fences, streamed or not. The caller's message list
is never touched: the wrapper works on a copy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import (
    PromptMessage,
    SystemPromptMessage,
    TextPromptMessageContent,
    UserPromptMessage,
)

__all__ = ["CODE_BLOCK_FORMATS", "code_block_request", "strip_fences", "strip_fences_result", "strip_fences_stream"]

CODE_BLOCK_FORMATS = ("JSON", "XML")

_INSTRUCTION = (
    "Answer with exactly one valid {block} document and nothing else. Follow the instructions below for its "
    'structure; when they do not define one, use {{"answer": "<your answer>"}} (or <answer>...</answer> for XML).\n'
    "<instructions>\n{instructions}\n</instructions>"
)


def code_block_request(
    messages: list[PromptMessage], params: dict[str, Any], stop: list[str] | None
) -> tuple[list[PromptMessage], dict[str, Any], list[str]]:
    """Rewrite (copies of) the messages, parameters and stop words for code-block mode."""
    params = dict(params)
    block = str(params.pop("response_format")).lower()
    stop = [*list(stop or []), "\n```", "```\n"]
    out = list(messages)
    if out and isinstance(out[0], SystemPromptMessage):
        out[0] = SystemPromptMessage(content=_INSTRUCTION.format(block=block.upper(), instructions=out[0].text()))
    else:
        out.insert(0, SystemPromptMessage(content=_INSTRUCTION.format(block=block.upper(), instructions="")))
    fence = f"\n```{block}\n"
    last = out[-1]
    if isinstance(last, UserPromptMessage):
        content = last.content
        if isinstance(content, list) and content and isinstance(content[-1], TextPromptMessageContent):
            parts = list(content)
            parts[-1] = TextPromptMessageContent(data=parts[-1].data + fence)
            out[-1] = msgspec.structs.replace(last, content=parts)
        elif isinstance(content, list):
            out[-1] = msgspec.structs.replace(last, content=[*content, TextPromptMessageContent(data=fence)])
        else:
            out[-1] = msgspec.structs.replace(last, content=(content or "") + fence)
    else:
        out.append(UserPromptMessage(content=f"```{block}\n"))
    return out, params, stop


def strip_fences(text: str) -> str:
    """``"```json\\n{...}\\n```"`` -> ``"{...}"``; text without fences is returned as it is."""
    body = text.lstrip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    end = body.find("```")
    return (body[:end] if end >= 0 else body).strip("\n")


def strip_fences_result(result: LLMResult) -> LLMResult:
    if isinstance(result.message.content, str):
        result.message.content = strip_fences(result.message.content)
    return result


async def strip_fences_stream(chunks: AsyncIterator[LLMResultChunk]) -> AsyncIterator[LLMResultChunk]:
    """Drop an opening fence line and everything from a closing fence; usage and finish reason survive."""
    head = ""
    held = ""  # trailing backticks that may start a closing fence in the next piece
    state = "start"
    try:
        async for chunk in chunks:
            message = chunk.delta.message
            text = message.content if isinstance(message.content, str) else ""
            if state == "done":
                text = ""
            elif state == "start":
                head += text
                stripped = head.lstrip()
                if not stripped or (stripped.startswith("`") and "\n" not in stripped):
                    text = ""  # wait until the opening fence line is complete
                else:
                    text = stripped.split("\n", 1)[1] if stripped.startswith("```") else head
                    state = "body"
            if state == "body":
                text = held + text
                held = ""
                if "```" in text:
                    text = text[: text.index("```")]
                    state = "done"
                elif chunk.delta.finish_reason is None:
                    kept = text.rstrip("`")
                    held, text = text[len(kept) :], kept
            message.content = text
            yield chunk
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
