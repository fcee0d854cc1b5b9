"""The protocols as their reference servers speak them, without a provider's quirks.

Providers that declare no simulator profile are tested under ``/p/plain/...``, so any base
path they use reaches the handler its endpoint names.
"""

from __future__ import annotations

from arun.testing.profiles import Profile

PROFILE = Profile(name="plain", sources=("PROTOCOLS.md",))
