"""One error tree: every exception class arun defines is an :class:`arun.errors.ArunError`.

The walk imports every module under ``arun`` (providers included) and collects each
exception class whose home module is arun's, so a new untyped error fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import arun
from arun import errors

#: Classes that were ValueErrors before the tree existed: Dify code catches them as ValueError.
_STILL_VALUE_ERRORS = [
    "arun.errors.InvokeError",
    "arun.errors.CredentialsValidateFailedError",
    "arun.errors.ArunUsageError",
    "arun.errors.SchemaError",
    "arun.manager.errors.ManagerError",
    "arun.manager.crypto.CredentialDecryptError",
    "arun.manager.crypto.MasterKeyError",
    "arun.state.base.StateUnavailableError",
]


def _arun_exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    failed: list[str] = []
    for info in pkgutil.walk_packages(arun.__path__, "arun.", onerror=failed.append):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("arun"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    assert not failed, f"modules that did not import: {failed}"
    return found


_CLASSES = _arun_exception_classes()


def test_the_walk_finds_the_whole_library():
    # the walk reaches every layer (a broken walk would make the next test vacuous)
    for name in ("arun.errors.InvokeError", "arun.manager.store.base.StoreError", "arun.state.base.StateUnavailableError",
                 "arun.manager.errors.QuotaExceededError", "arun.policy.limits_spec.LimitExceededError"):  # fmt: skip
        assert name in _CLASSES
    assert len(_CLASSES) >= 40


@pytest.mark.parametrize(
    "name",
    sorted(_CLASSES),
)
def test_every_arun_exception_is_an_arun_error(name):
    assert issubclass(_CLASSES[name], errors.ArunError)


@pytest.mark.parametrize("name", _STILL_VALUE_ERRORS)
def test_former_value_errors_stay_value_errors(name):
    assert issubclass(_CLASSES[name], ValueError)


def test_store_errors_are_catchable_with_the_same_base():
    from arun.manager.store import StoreConflictError, StoreError, StoreUnavailableError
    from arun.state import StateUnavailableError

    for cls in (StoreError, StoreUnavailableError, StoreConflictError, StateUnavailableError):
        with pytest.raises(errors.ArunError):
            raise cls("down")


def test_the_tree_is_drawn_in_the_errors_docstring():
    doc = errors.__doc__ or ""
    missing = [n.rsplit(".", 1)[1] for n, c in _CLASSES.items() if issubclass(c, errors.ArunError) and n.rsplit(".", 1)[1] not in doc]
    assert not missing, f"arun/errors.py's tree does not show {missing}"


async def test_configuration_mistakes_are_in_the_tree_and_keep_their_old_base() -> None:
    """What used to be a bare ValueError / RuntimeError: a wrong URL scheme, a limit, a strategy,
    a target without configs, a runtime used before start."""
    from arun import ModelRuntime, UserPromptMessage
    from arun.manager.store import open_store
    from arun.policy import CredentialConfig, LimitSpec, PolicyRouter, Target, open_limiter
    from arun.policy.strategies import make_strategy
    from arun.state import open_state
    from arun.tokenizers import get_encoding

    with pytest.raises(errors.ArunUsageError, match="unknown limiter URL scheme") as info:
        open_limiter("nats://x")
    assert isinstance(info.value, ValueError)
    with pytest.raises(errors.ArunUsageError, match="unknown state store URL scheme"):
        open_state("nats://x")
    with pytest.raises(errors.ArunUsageError, match="unsupported store URL scheme"):
        await open_store("mysql://x")
    with pytest.raises(errors.ArunUsageError, match="must be a positive int"):
        LimitSpec(rpm=0)
    with pytest.raises(errors.ArunUsageError, match="unknown balancing strategy"):
        make_strategy("fastest")
    with pytest.raises(errors.ArunUsageError, match="unknown encoding"):
        get_encoding("no_such_encoding")
    rt = ModelRuntime()
    with pytest.raises(errors.NotStartedError, match="not started") as started:
        rt.http.session
    assert isinstance(started.value, RuntimeError) and isinstance(started.value, errors.ArunError)
    async with rt:
        router = PolicyRouter(rt)
        with pytest.raises(errors.ArunUsageError, match="duplicate credential config ids"):
            await router.invoke(Target("openai", "gpt-4o", [CredentialConfig("a", {}), CredentialConfig("a", {})]),
                                [UserPromptMessage(content="hi")], stream=False)  # fmt: skip
