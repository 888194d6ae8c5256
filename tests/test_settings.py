"""Settings from the environment and a .env file; bad values name their variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions import FUNCTIONS
from shared.exceptions import ConfigError
from shared.llm_chain import llm_chain
from shared.settings import CHAT_TIMEOUT_SECONDS, Settings


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert settings.store_url.startswith("sqlite:///")
    assert settings.llm_provider == "offline"
    assert settings.default_shop == "demo"
    assert settings.port == 8080


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nDEFAULT_SHOP=boutique\nexport PORT='9000'\n"
        'ALLOWED_ORIGINS="https://a.example, https://b.example/"\nAWS_REGION=eu-west-1\n'
    )
    settings = Settings.from_env({"PORT": "9100", "UNRELATED": "x"}, env_file=env_file)
    assert settings.default_shop == "boutique"
    assert settings.port == 9100
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"STORE_URL": "mongodb://x"}, "STORE_URL"),
        ({"STORE_URL": "just-a-path.db"}, "STORE_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LLM_PROVIDER": "skynet"}, "LLM_PROVIDER"),
        ({"DEFAULT_SHOP": "Not A Shop"}, "DEFAULT_SHOP"),
        ({"RATE_LIMIT_PER_MINUTE": "0"}, "RATE_LIMIT_PER_MINUTE"),
        ({"MAX_MESSAGE_CHARS": "10000"}, "MAX_MESSAGE_CHARS"),
        ({"PAYMENT_TEST_SECRET": "too-short"}, "PAYMENT_TEST_SECRET"),
        ({"STRIPE_API_BASE": "api.stripe.com"}, "STRIPE_API_BASE"),
    ],
)
def test_malformed_values_fail_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(environ, env_file=None)


def test_unknown_variable_in_env_file_fails(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("STOR_URL=sqlite:///x.db\n")
    with pytest.raises(ConfigError, match="STOR_URL"):
        Settings.from_env({}, env_file=env_file)


def test_malformed_env_file_line_names_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=8080\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        Settings.from_env({}, env_file=env_file)


def test_env_example_copied_to_env_gives_the_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((Path(__file__).resolve().parents[1] / ".env.example").read_text())
    assert Settings.from_env({}, env_file=env_file) == Settings.from_env({}, env_file=None)


def test_every_setting_is_documented_in_env_example() -> None:
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    for field in Settings.model_fields.values():
        assert f"{field.alias}=" in example, f"{field.alias} is missing from .env.example"


def test_the_global_key_never_goes_to_a_shops_other_provider() -> None:
    settings = Settings.from_env(
        {"LLM_PROVIDER": "openai", "LLM_API_KEY": "sk-openai", "DEEPSEEK_API_KEY": "ds-key"},
        env_file=None,
    )
    assert llm_chain(settings)[0].api_key == "sk-openai"
    assert llm_chain(settings, "deepseek")[0].api_key == "ds-key"
    assert llm_chain(settings, "mistral")[0].api_key is None


def test_the_settings_name_the_ports_schemes_and_providers_as_their_tables_do() -> None:
    """The settings import no port (tests/test_layering.py): their literals must not drift."""
    from typing import get_args

    from shared.llm import PROVIDERS
    from shared.settings import LLMProvider, StoreScheme, TTSProvider
    from shared.speech import PROVIDERS as SPEECH_PROVIDERS
    from shared.store import BACKENDS

    assert set(get_args(StoreScheme)) == set(BACKENDS)
    assert set(get_args(LLMProvider)) == set(PROVIDERS)
    assert set(get_args(TTSProvider)) == set(SPEECH_PROVIDERS)


def test_the_turn_budget_must_leave_the_chat_function_time_to_answer() -> None:
    assert Settings.from_env({"LLM_TURN_BUDGET": "25"}, env_file=None).llm_turn_budget == 25
    with pytest.raises(ConfigError, match=r"LLM_TURN_BUDGET: .*at most 25 s"):
        Settings.from_env({"LLM_TURN_BUDGET": "26"}, env_file=None)
    chat = next(function for function in FUNCTIONS if function.name == "chat")
    assert chat.aws_timeout_s == CHAT_TIMEOUT_SECONDS  # the bound follows the deployed limit
