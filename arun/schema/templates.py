"""Dify's parameter-rule templates (``use_template``), as data."""

from __future__ import annotations

from typing import Any

__all__ = ["PARAMETER_RULE_TEMPLATE"]


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en_US": en, "zh_Hans": zh}


PARAMETER_RULE_TEMPLATE: dict[str, dict[str, Any]] = {
    "temperature": {
        "label": _label("Temperature", "温度"),
        "type": "float",
        "help": _label(
            "Controls randomness. Lower values give more focused, deterministic output.",
            "控制随机性。较低的值使输出更集中、更确定。",
        ),
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "top_p": {
        "label": _label("Top P", "Top P"),
        "type": "float",
        "help": _label("Nucleus sampling: only tokens within this probability mass are considered.", "核采样阈值。"),
        "required": False,
        "default": 1.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "top_k": {
        "label": _label("Top K", "取样数量"),
        "type": "int",
        "help": _label("Only sample from the K most likely tokens.", "仅从概率最高的 K 个词中采样。"),
        "required": False,
        "default": 50,
        "min": 1,
        "max": 100,
        "precision": 0,
    },
    "presence_penalty": {
        "label": _label("Presence Penalty", "存在惩罚"),
        "type": "float",
        "help": _label("Penalises tokens that already appeared, encouraging new topics.", "对已出现的词进行惩罚。"),
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "frequency_penalty": {
        "label": _label("Frequency Penalty", "频率惩罚"),
        "type": "float",
        "help": _label("Penalises tokens by how often they already appeared.", "按出现频率对词进行惩罚。"),
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "max_tokens": {
        "label": _label("Max Tokens", "最大标记"),
        "type": "int",
        "help": _label("The maximum number of tokens to generate.", "生成的最大标记数。"),
        "required": False,
        "default": 64,
        "min": 1,
        "max": 2048,
        "precision": 0,
    },
    "response_format": {
        "label": _label("Response Format", "回复格式"),
        "type": "string",
        "help": _label("Ask the model to answer in this format.", "指定模型的输出格式。"),
        "required": False,
        "options": ["JSON", "XML"],
    },
    "json_schema": {
        "label": {"en_US": "JSON Schema"},
        "type": "text",
        "help": _label("The JSON schema the answer must follow.", "输出必须遵循的 JSON Schema。"),
        "required": False,
    },
}
