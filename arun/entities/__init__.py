"""Entities: msgspec Structs matching Dify's Model Runtime entities."""

from arun.entities.common import *  # noqa: F403
from arun.entities.embedding import *  # noqa: F403
from arun.entities.llm import *  # noqa: F403
from arun.entities.messages import *  # noqa: F403
from arun.entities.model import *  # noqa: F403
from arun.entities.provider import *  # noqa: F403
