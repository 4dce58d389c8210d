"""The `nova` command's own failure paths and helpers (no stack needed)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.runtime import Child, RuntimeFailure, Stack, banner, port_is_free, wait_until
from shared.settings import NovaSettings
from tests.conftest import free_port

runner = CliRunner()


def test_demo_data_command_writes_a_workbook(tmp_path):
    result = runner.invoke(
        app,
        [
            "demo-data",
            "--out",
            str(tmp_path),
            "--items",
            "30",
            "--depots",
            "8",
            "--days",
            "60",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    written = list(tmp_path.glob("*.xlsx"))
    assert len(written) == 1
    assert str(written[0]) in result.output


def test_up_refuses_a_busy_api_port_with_a_clear_message(tmp_path, monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("NOVA_NATS__URL", f"nats://127.0.0.1:{free_port()}")
        monkeypatch.setenv("NOVA_API__PORT", str(busy))
        result = runner.invoke(app, ["up", "--no-demo"])
    assert result.exit_code == 1
    assert f"port {busy} for API" in result.output
    assert "NOVA_API__PORT" in result.output


def test_port_is_free_sees_a_listener():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert not port_is_free("127.0.0.1", holder.getsockname()[1])
    assert port_is_free("127.0.0.1", free_port())


def test_a_dead_child_is_reported_with_its_log_tail(tmp_path):
    settings = NovaSettings(var_dir=tmp_path)
    stack = Stack(settings)
    log_path = tmp_path / "crashy.log"
    log_path.write_text("line one\nboom: cannot open lake\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    stack.children.append(Child("crashy", process, log_path))
    with pytest.raises(RuntimeFailure, match=r"crashy exited with code 3(.|\n)*boom: cannot"):
        stack.check_children()


def test_wait_until_times_out_naming_what_it_waited_for():
    with pytest.raises(RuntimeFailure, match="the moon"):
        wait_until(lambda: False, 0.3, "the moon")


@pytest.mark.parametrize(("keys", "warned"), [("", True), ("k1", False)])
def test_the_banner_warns_of_an_api_open_to_the_network(tmp_path, keys, warned):
    settings = NovaSettings(
        var_dir=tmp_path, api={"host": "0.0.0.0", "port": free_port(), "keys": keys}
    )
    shown = banner(Stack(settings), None)
    assert ("WARNING: open to the network on 0.0.0.0 without a key" in shown) is warned
