"""Runtime: provider discovery, the factory and the pooled client's owner."""

from arun.runtime.model_runtime import ModelRuntime
from arun.runtime.provider import ModelProvider

__all__ = ["ModelRuntime", "ModelProvider"]
