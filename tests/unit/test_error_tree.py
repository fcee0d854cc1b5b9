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
    [
        n
        for n in sorted(_CLASSES)
    ],
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
