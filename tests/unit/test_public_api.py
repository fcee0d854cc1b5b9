import subprocess
import sys

import arun

PINNED = {
    "ModelRuntime", "LargeLanguageModel", "TextEmbeddingModel", "RerankModel", "Speech2TextModel", "TTSModel",
    "ModerationModel", "LLMStream", "UserPromptMessage", "AssistantPromptMessage", "SystemPromptMessage",
    "ToolPromptMessage", "PromptMessageTool", "LLMResult", "LLMResultChunk", "LLMUsage", "TextEmbeddingResult",
    "RerankResult", "InvokeError", "InvokeConnectionError", "InvokeServerUnavailableError", "InvokeRateLimitError",
    "InvokeAuthorizationError", "InvokeBadRequestError", "CredentialsValidateFailedError", "ModelType", "HttpConfig",
}


def test_all_names_resolve():
    assert set(arun.__all__) >= PINNED
    for name in arun.__all__:
        assert getattr(arun, name) is not None


def test_import_is_light():
    code = "import sys, arun; print(','.join(m for m in ('aiohttp', 'yaml', 'pydantic', 'arun.providers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_three_lists_of_public_names_agree():
    """``_EXPORTS`` (lazy loading), ``__all__`` and the ``TYPE_CHECKING`` re-exports name the same
    things from the same modules, so no name is importable at run time but unknown to a type
    checker, or the other way round."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(arun.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING")
    typed = {a.asname: node.module for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names}
    assert all(a.name == a.asname for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names)
    assert typed == arun._EXPORTS
    assert set(arun.__all__) == {*arun._EXPORTS, "__version__"} and len(arun.__all__) == len(set(arun.__all__))
