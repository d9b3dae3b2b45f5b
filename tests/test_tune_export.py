"""The GGUF export's architecture profiles (the round trips themselves are integration tests)."""

import pytest

from genstack.errors import GenstackError
from genstack.tune.export import EXPORTABLE, check_exportable

pytestmark = pytest.mark.unit


def test_the_exported_architectures_are_the_bundled_models_and_each_has_its_own_transform():
    assert set(EXPORTABLE) == {"llama", "gemma3"}
    llama, gemma = check_exportable("llama"), check_exportable("gemma3")
    assert llama.permute_qk and llama.norm_shift == 0.0
    assert not gemma.permute_qk and gemma.norm_shift == 1.0


def test_another_architecture_is_refused_in_one_line_naming_the_way_out():
    with pytest.raises(GenstackError) as e:
        check_exportable("qwen2")
    msg = str(e.value)
    assert "'qwen2'" in msg and "--no-export" in msg and "\n" not in msg
