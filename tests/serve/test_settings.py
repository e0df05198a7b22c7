"""``ServeSettings`` validation and the ``themis serve`` command, end to end in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import typer
from typer.testing import CliRunner

from themis_rm.cli.serve import serve
from themis_rm.config import config_to_dict
from themis_rm.errors import ThemisInputError
from themis_rm.serve.settings import load_settings

MOUNTED = "import typer; from themis_rm.cli.serve import serve; app = typer.Typer(); app.command()(serve); app()"


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve)  # exactly how themis_rm.cli.main mounts it
    return app


def test_criteria_turn_rerendering_on_unless_it_is_switched_off_explicitly():
    assert load_settings(model="m", criteria="security").rerender
    assert not load_settings(model="m").rerender and not load_settings(model="m", criteria="none").rerender
    with pytest.raises(ThemisInputError, match=r"--criteria security with --no-rerender"):
        load_settings(model="m", criteria="security", rerender=False)


def test_criteria_from_the_environment_also_turn_rerendering_on(monkeypatch):
    monkeypatch.setenv("THEMIS_SERVE_CRITERIA", "runtime")
    assert load_settings(model="m").rerender


def test_every_bad_value_is_reported_at_once_naming_its_flag():
    with pytest.raises(ThemisInputError) as caught:
        load_settings(model="m", port=70000, max_wait_ms=-1)
    assert "--port" in str(caught.value) and "--max-wait-ms" in str(caught.value)
    with pytest.raises(ThemisInputError, match="--model is required"):
        load_settings()
    with pytest.raises(ThemisInputError, match="--max-items-per-request"):
        load_settings(model="m", max_items_per_request=10, max_queue_items=5)
    with pytest.raises(ThemisInputError, match=r"--max-request-tokens \(512\) must be at least --max-length"):
        load_settings(model="m", max_request_tokens=512, max_length=1024)


def test_environment_fills_what_the_command_line_leaves_out(monkeypatch):
    monkeypatch.setenv("THEMIS_SERVE_PORT", "9100")
    monkeypatch.setenv("THEMIS_SERVE_API_KEY", "from-env")
    settings = load_settings(model="m")
    assert settings.port == 9100 and settings.api_key.get_secret_value() == "from-env"
    assert settings.host == "127.0.0.1"  # loopback unless asked
    assert load_settings(model="m", port=9200).port == 9200


def test_cli_refuses_bad_settings_before_loading_any_model():
    result = CliRunner().invoke(cli_app(), ["--model", "does/not/matter", "--criteria", "runtime", "--no-rerender"])
    assert result.exit_code == 2
    assert "--no-rerender" in result.output


def test_cli_help_shows_each_settings_description():
    result = CliRunner().invoke(cli_app(), ["--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    for flag in ("--max-wait-ms", "--api-key", "--rerender", "--assistant-marker", "--max-queue-items"):
        assert flag in result.output


@pytest.fixture
def served(monkeypatch) -> list:
    """Run ``themis serve`` up to uvicorn without a model: collects the settings create_app gets, then run's args."""
    calls: list = []
    monkeypatch.setattr("themis_rm.serve.app.create_app", lambda settings: calls.append(settings) or "app")
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append(kwargs))
    return calls


def test_config_yaml_fills_what_flags_leave_out_and_flags_override_it(tmp_path, served):
    config = tmp_path / "serve.yaml"
    config.write_text("model: m\ncriteria: runtime\nport: 9000\nmax_wait_ms: 5\n", encoding="utf-8")
    result = CliRunner().invoke(cli_app(), ["--config", str(config), "--port", "9001", "--end-marker", "</s>"])
    assert result.exit_code == 0, result.output
    settings, uvicorn_args = served
    assert (settings.model, settings.criteria, settings.rerender, settings.max_wait_ms) == ("m", "runtime", True, 5)
    assert settings.port == uvicorn_args["port"] == 9001 and settings.end_markers == ("</s>",)


def test_environment_sits_between_the_config_yaml_and_the_flags(tmp_path, served, monkeypatch):
    config = tmp_path / "serve.yaml"
    config.write_text("model: m\nport: 9000\nmax_wait_ms: 5\n", encoding="utf-8")
    monkeypatch.setenv("THEMIS_SERVE_PORT", "9100")
    monkeypatch.setenv("THEMIS_SERVE_MAX_WAIT_MS", "7")
    result = CliRunner().invoke(cli_app(), ["--config", str(config), "--max-wait-ms", "9"])
    assert result.exit_code == 0, result.output
    assert (served[0].port, served[0].max_wait_ms) == (9100, 9)
    assert load_settings(config, max_wait_ms=None).max_wait_ms == 7  # None = not given, as a left-out flag


def test_prompts_still_names_the_prompt_pack_everywhere(tmp_path, served, monkeypatch):
    result = CliRunner().invoke(cli_app(), ["--model", "m", "--prompts", "open"])
    assert result.exit_code == 0, result.output
    assert served[0].prompt_pack == "open"
    config = tmp_path / "serve.yaml"
    config.write_text("model: m\nprompts: open\n", encoding="utf-8")
    assert load_settings(config).prompt_pack == "open" and load_settings(model="m", prompts="open").prompt_pack
    monkeypatch.setenv("THEMIS_SERVE_PROMPTS", "open")
    assert load_settings(model="m").prompt_pack == "open"
    assert load_settings(model="m", prompt_pack="pack.json").prompt_pack == "pack.json"


def test_api_key_stays_out_of_repr_and_the_resolved_config():
    settings = load_settings(model="m", api_key="s3cret")
    assert settings.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.api_key)
    assert "api_key" not in config_to_dict(settings)


def test_missing_serve_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what `import uvicorn` meets when it is not installed
    result = CliRunner().invoke(cli_app(), ["--model", "m"])
    assert result.exit_code == 2 and "themis-rm[serve]" in result.output


@pytest.mark.slow
def test_themis_serve_starts_answers_and_stops_gracefully_on_sigint(tiny_model_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--model", str(tiny_model_dir), "--port", str(port), "--max-length", "256"]
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-c", MOUNTED, *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        answer = _first_answer(f"http://127.0.0.1:{port}", process, timeout_s=60)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    assert f"serving {tiny_model_dir} on http://127.0.0.1:{port}" in stderr


def _first_answer(url: str, process: subprocess.Popen, timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "themis serve exited early"
        try:
            return httpx.get(f"{url}/health", timeout=2, trust_env=False)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"themis serve did not answer within {timeout_s} s")
