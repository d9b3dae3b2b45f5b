from pathlib import Path

import pytest

from genstack import load_settings
from genstack.errors import ConfigError

pytestmark = pytest.mark.unit


def test_precedence_defaults_file_env_overrides(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('n_ctx = 1024\ndefault_model = "from-file"\nflash_attn = false\n')
    env = {"GENSTACK_HOME": str(tmp_path), "GENSTACK_N_CTX": "4096"}
    s = load_settings(env=env)
    assert s.default_model == "from-file"  # file beats default
    assert s.n_ctx == 4096  # env beats file
    assert s.flash_attn is False
    assert s.data_dir == tmp_path
    assert load_settings(env=env, n_ctx=512).n_ctx == 512  # explicit beats env


def test_default_home_follows_xdg(tmp_path):
    s = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert s.data_dir == Path(tmp_path) / "genstack"


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("n_ctx = -3", "non-negative integer"),
        ('n_ctx = "big"', "must be an integer"),
        ("colour = 1", "unknown setting 'colour'"),
        ("n_ctx = ", "cannot read config file"),
        ('flash_attn = "maybe"', "must be true or false"),
        ('weights = "q2_k"', "weights must be auto, original, q8_0 or f16"),
        ('[mcp_servers.x]\ncommand = ["srv"]\napi_key_env = "K"', "goes with url"),
        ('[mcp_servers.x]\nurl = "http://h/mcp"\napi_key = "secret"', "api_key_env"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path, content, fragment):
    (tmp_path / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env={"GENSTACK_HOME": str(tmp_path)})


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="GENSTACK_N_BATCH"):
        load_settings(env={"GENSTACK_HOME": str(tmp_path), "GENSTACK_N_BATCH": "lots"})


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
