"""Every module of the package imports: a stale import of a moved module fails here, not in production
(mypy is told to ignore missing imports for third-party packages, which hides first-party ones too)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import services

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(services.__path__, "services.") if ".gen." not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_the_module_imports(name: str) -> None:
    importlib.import_module(name)
