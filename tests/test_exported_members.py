import pytest

import genstack

pytestmark = pytest.mark.unit


def test_all_names_exist_and_are_documented():
    for name in genstack.__all__:
        obj = getattr(genstack, name)
        if callable(obj) and not name.startswith("__"):
            assert obj.__doc__, f"genstack.{name} has no docstring"


def test_public_api_is_exactly_all():
    import types

    public = {n for n in dir(genstack) if not n.startswith("_")}
    submodules = {n for n in public if isinstance(getattr(genstack, n), types.ModuleType)}
    assert public - submodules == set(genstack.__all__) - {"__version__"}
