"""Built-in providers.

In a wheel the top-level ``providers/`` folder is installed here (hatchling
force-include).  In a checkout (editable install or tests) the folder lives at
the repository root, so it is appended to this package's search path.
"""

from __future__ import annotations

from pathlib import Path

_checkout = Path(__file__).resolve().parents[2] / "providers"
if _checkout.is_dir() and (_checkout.parent / "pyproject.toml").is_file():
    __path__.append(str(_checkout))
