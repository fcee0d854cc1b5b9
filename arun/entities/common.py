"""i18n text and small shared enums."""

from __future__ import annotations

import msgspec

__all__ = ["I18nObject"]


class I18nObject(msgspec.Struct, omit_defaults=True):
    """Localised text. Every language falls back to ``en_US`` when empty."""

    en_US: str
    zh_Hans: str | None = None
    ja_JP: str | None = None
    pt_BR: str | None = None

    def __post_init__(self) -> None:
        if not self.zh_Hans:
            self.zh_Hans = self.en_US
        if not self.ja_JP:
            self.ja_JP = self.en_US
        if not self.pt_BR:
            self.pt_BR = self.en_US

    def get(self, language: str = "en_US") -> str:
        value = getattr(self, language.replace("-", "_"), None) if language else None
        return value or self.en_US
