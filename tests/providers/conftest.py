"""What the provider tests share: ``rt``, a runtime that must hand every pooled connection back.

A test module whose provider takes its base URL from a credential needs nothing: ``rt`` is a
plain :class:`ModelRuntime`.  A module whose provider's base URL no credential overrides sets
``PROFILE = "<simulator profile>"`` beside ``PROVIDER``, and ``rt`` then sends that provider's
requests to ``<upstream>/p/<PROFILE>`` (``endpoint_overrides``).  A module whose runtime differs
(other HTTP settings, several runtimes) defines its own ``rt``, which replaces this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arun import ModelRuntime


@pytest.fixture
def endpoint_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    """``{PROVIDER: <upstream>/p/<PROFILE>}`` for a module that sets ``PROFILE``, else nothing."""
    profile = getattr(request.module, "PROFILE", None)
    if profile is None:
        return {}
    upstream = request.getfixturevalue("upstream")
    return {request.module.PROVIDER: f"{upstream.url}/p/{profile}"}


@pytest_asyncio.fixture
async def rt(endpoint_overrides: dict[str, str]) -> AsyncIterator[ModelRuntime]:
    async with ModelRuntime(endpoint_overrides=endpoint_overrides) as runtime:
        yield runtime
        assert runtime.http.acquired_connections() == 0
