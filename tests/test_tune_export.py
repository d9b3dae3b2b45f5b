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


def test_the_converter_missing_or_failing_is_one_clear_error(tmp_path, monkeypatch):
    from genstack.errors import GenstackError
    from genstack.tune.convert import MISSING, convert_folder, converter_dir

    monkeypatch.setenv("GENSTACK_LLAMA_CONVERT", str(tmp_path))
    assert converter_dir() is None
    with pytest.raises(GenstackError) as err:
        convert_folder(tmp_path, tmp_path / "out.gguf")
    assert str(err.value) == MISSING and "GENSTACK_LLAMA_CONVERT" in MISSING
    (tmp_path / "convert_hf_to_gguf.py").write_text("import sys\nprint('loading', file=sys.stderr)\n"
                                                     "print('ValueError: unknown architecture', file=sys.stderr)\n"
                                                     "sys.exit(1)\n")
    assert converter_dir() == tmp_path
    with pytest.raises(GenstackError, match="convert_hf_to_gguf.py failed: ValueError: unknown architecture$"):
        convert_folder(tmp_path, tmp_path / "out.gguf")
