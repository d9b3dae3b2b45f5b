"""genstack's tools over MCP: the server in-process (unit) and `genstack mcp` as a real process over stdio and
streamable HTTP, driven by the `mcp` package's own client; and an agent using an external MCP server's tools."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("mcp", reason="the agents extra (mcp) is not installed")

from genstack.agents.calling import ToolCall  # noqa: E402
from genstack.agents.loop import ToolBox  # noqa: E402
from genstack.agents.mcp import build_server  # noqa: E402
from genstack.agents.tools import Tool  # noqa: E402
from tests._server import SAMPLE, free_port  # noqa: E402


class Deleter(Tool):
    name = "delete_files"
    description = "Delete files"
    parameters = {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]}
    side_effects = True

    def run(self, arguments, context):
        return "deleted"


async def _session(target, fn):
    from mcp.client import Client

    async with Client(target) as client:
        return await fn(client)


def text_of(result):
    return "".join(c.text for c in result.content if c.type == "text")


@pytest.mark.unit
def test_the_server_lists_schemas_and_calls_under_the_toolbox_rules():
    box = ToolBox(["calculator", Deleter()])
    server = build_server(box)

    async def go(client):
        listed = await client.list_tools()
        ok = await client.call_tool("calculator", {"expression": "17 * 23"})
        bad = await client.call_tool("calculator", {"expr": "1"})
        denied = await client.call_tool("delete_files", {"pattern": "*"})
        unknown = await client.call_tool("rm", {})
        return listed, ok, bad, denied, unknown

    listed, ok, bad, denied, unknown = asyncio.run(_session(server, go))
    tools = {t.name: t for t in listed.tools}
    assert tools["calculator"].input_schema["required"] == ["expression"]
    assert tools["delete_files"].annotations.destructive_hint is True
    assert text_of(ok) == "391" and not ok.is_error
    assert bad.is_error and "bad arguments" in text_of(bad)
    assert denied.is_error and "not approved" in text_of(denied)
    assert unknown.is_error and "not allowed" in text_of(unknown)
    # the toolbox is the same object the agent uses: calls outside MCP behave the same
    assert box.call(ToolCall("calculator", {"expression": "2+2"})).output == "4"


def _env(home):
    return {**os.environ, "GENSTACK_HOME": str(home)}


@pytest.mark.integration
def test_genstack_mcp_over_stdio_serves_search_of_a_real_collection(tmp_path):
    from mcp.client.stdio import StdioServerParameters

    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "genstack", "ingest", str(SAMPLE), "--collection", "docs"], check=True,
                   env=_env(home), capture_output=True)
    params = StdioServerParameters(command=sys.executable, args=["-m", "genstack", "mcp", "--collection", "docs",
                                                                 "--tools", "search,calculator"], env=_env(home))

    async def go(client):
        names = sorted(t.name for t in (await client.list_tools()).tools)
        hits = await client.call_tool("search", {"query": "When is the Lisbon office open?", "k": 2})
        return names, hits

    names, hits = asyncio.run(_session(params, go))
    assert names == ["calculator", "search"]
    assert "[1]" in text_of(hits) and ".md" in text_of(hits)


@pytest.mark.integration
def test_genstack_mcp_over_streamable_http(tmp_path):
    port = free_port()
    log = open(tmp_path / "mcp.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "genstack", "mcp", "--transport", "http", "--port", str(port),
                             "--tools", "calculator,datetime"], env=_env(tmp_path / "home"), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/mcp"

        async def go(client):
            return await client.call_tool("calculator", {"expression": "2 ** 10"})

        deadline = time.time() + 60
        while True:
            try:
                result = asyncio.run(_session(url, go))
                break
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    raise
                time.sleep(0.5)
        assert text_of(result) == "1024"
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.mark.unit
def test_mcp_bad_flags_are_one_line_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "genstack", "mcp", "--transport", "carrier-pigeon"],
                       env=_env(tmp_path / "home"), capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.startswith("error: --transport") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "genstack", "mcp", "--transport", "http", "--host", "0.0.0.0"],
                       env=_env(tmp_path / "home"), capture_output=True, text=True)
    assert r.returncode != 0 and "--allow-remote" in r.stderr
    r = subprocess.run([sys.executable, "-m", "genstack", "mcp", "--api-key", "k"],
                       env=_env(tmp_path / "home"), capture_output=True, text=True)
    assert r.returncode != 0 and "--api-key is for --transport http" in r.stderr
    r = subprocess.run([sys.executable, "-m", "genstack", "mcp", "--transport", "http", "--tools", "calculator",
                        "--api-key", "k:calculator,shell"], env=_env(tmp_path / "home"), capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "shell not served here" in r.stderr
    assert "API key 1:" in r.stderr and "k:" not in r.stderr  # named by position, never by the key


@pytest.mark.integration
def test_an_agent_uses_the_tools_of_an_external_mcp_server(tmp_path):
    """`genstack agent --tools mcp:NAME` with [mcp_servers.NAME] pointing at another `genstack mcp` process;
    the model is the scripted fake (the tool plumbing, not the model, is under test here)."""
    from genstack import load_settings
    from genstack.agents.loop import Agent
    from genstack.agents.tools import ToolContext
    from tests._tools import scripted

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[mcp_servers.calc]\ncommand = ["{sys.executable}", "-m", "genstack", "mcp", "--model", "fake", '
        f'"--tools", "calculator"]\n')
    settings = load_settings(data_dir=home, config_file=home / "config.toml")
    model = scripted({"name": "calc.calculator", "arguments": {"expression": "6 * 7"}}, "It is 42.")
    ctx = ToolContext(settings=settings)
    agent = Agent(model, ["mcp:calc"], context=ctx)
    try:
        assert agent.tools[0].name == "calc.calculator" and agent.tools[0].side_effects is False
        result = agent.run("What is 6 times 7?")
    finally:
        agent.close()
    assert result.steps[0].results[0].output == "42" and result.answer == "It is 42."


@pytest.mark.unit
def test_api_keys_parse_and_a_limited_key_gets_only_its_tools_in_the_toolbox():
    from genstack.agents.mcp import parse_api_keys
    from genstack.errors import InvalidParameter

    keys = parse_api_keys(["alpha", "beta:calculator"], ["calculator", "datetime"])
    assert sorted(t for _, t in keys.values() if t) == [frozenset({"calculator"})]
    assert all(v[0].startswith("key-") and "alpha" not in v[0] for v in keys.values())  # ids, never the key
    with pytest.raises(InvalidParameter, match="read_file not served here"):
        parse_api_keys(["gamma:calculator,read_file"], ["calculator"])
    with pytest.raises(InvalidParameter, match="must not be empty"):
        parse_api_keys([":calculator"], ["calculator"])
    with pytest.raises(InvalidParameter, match="no tools after"):
        parse_api_keys(["delta:"], ["calculator"])
    box = ToolBox(["calculator", "datetime"])
    refused = box.call(ToolCall("datetime", {}), only=frozenset({"calculator"}))
    assert refused.status == "refused" and "allowed: calculator)" in refused.output  # datetime is not even named
    assert box.call(ToolCall("calculator", {"expression": "1+1"}), only=frozenset({"calculator"})).output == "2"


def _wait_for_http(port, proc, timeout=60):
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp", timeout=2)
        except urllib.error.HTTPError:
            return  # it answers (401 without a key, or 4xx for a bare GET)
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("genstack mcp did not start")
            time.sleep(0.5)
        else:
            return


@pytest.mark.integration
def test_genstack_mcp_over_http_checks_api_keys_and_limits_tools_per_key(tmp_path):
    """`genstack mcp --transport http --api-key`: no key is a 401; a full key sees every served tool; a key
    limited to the calculator lists only it and its call of another tool is refused; an agent reaches the
    server through [mcp_servers.NAME] api_key_env."""
    import urllib.error
    import urllib.request

    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    port = free_port()
    log = open(tmp_path / "mcp.log", "w")
    env = {**_env(tmp_path / "home"), "GENSTACK_MCP_API_KEYS": "limited-key:calculator"}
    proc = subprocess.Popen([sys.executable, "-m", "genstack", "mcp", "--transport", "http", "--port", str(port),
                             "--model", "fake", "--tools", "calculator,datetime", "--api-key", "full-key"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_for_http(port, proc)
        req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json",
                                                                                "Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 401 and b"invalid API key" in exc.value.read()

        def keyed(key):
            return streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}))

        async def go(client):
            names = sorted(t.name for t in (await client.list_tools()).tools)
            ok = await client.call_tool("calculator", {"expression": "6 * 7"})
            other = await client.call_tool("datetime", {})
            return names, ok, other

        names, ok, other = asyncio.run(_session(keyed("full-key"), go))
        assert names == ["calculator", "datetime"] and text_of(ok) == "42" and not other.is_error
        names, ok, other = asyncio.run(_session(keyed("limited-key"), go))
        assert names == ["calculator"] and text_of(ok) == "42"
        assert other.is_error and "not allowed" in text_of(other) and "datetime" not in text_of(other).split("allowed:")[1]

        from genstack import load_settings
        from genstack.agents.mcp import MCPServerConfig, MCPTools

        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text(f'[mcp_servers.box]\nurl = "{url}"\napi_key_env = "BOX_KEY"\n')
        settings = load_settings(data_dir=home, config_file=home / "config.toml")
        cfg = MCPServerConfig.from_settings("box", settings)
        with pytest.raises(Exception, match="BOX_KEY"):
            MCPTools(cfg)
        os.environ["BOX_KEY"] = "limited-key"
        try:
            tools = MCPTools(cfg)
            try:
                assert [t.name for t in tools.tools] == ["box.calculator"] and tools.call("calculator", {"expression": "2+3"}) == "5"
            finally:
                tools.close()
        finally:
            del os.environ["BOX_KEY"]
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
