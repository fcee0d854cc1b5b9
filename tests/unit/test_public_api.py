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
