from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.helpers import ROOT


def test_reads_recsys_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_MODELS_DIR", "/srv/models")
    monkeypatch.setenv("RECSYS_MODEL_NAME", "ml-1m")
    monkeypatch.setenv("RECSYS_MODEL_VERSION", "3")
    monkeypatch.setenv("RECSYS_CORS_ORIGINS", "http://a.example, http://b.example")
    settings = Settings()
    assert settings.models_dir == Path("/srv/models")
    assert (settings.model_name, settings.model_version) == ("ml-1m", 3)
    assert settings.cors_origins == ["http://a.example", "http://b.example"]


def test_defaults_keep_cors_off_and_serve_on_loopback(monkeypatch):
    for name in ("RECSYS_CORS_ORIGINS", "RECSYS_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.cors_origins == [] and settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model_name", "../etc", "must be 1-128 letters"),
        ("model_name", "..", "must be 1-128 letters"),
        ("max_n", 0, "greater than or equal to 1"),
        ("model_version", 0, "greater than or equal to 1"),
        ("log_level", "loud", "is not one of"),
    ],
)
def test_refuses_bad_values_with_the_reason(field, value, message):
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **{field: value})


def test_the_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [
        name for name in Settings.model_fields if f"| `RECSYS_{name.upper()}` |" not in readme
    ]
    assert not missing, f"README's configuration table lacks {missing}"


def test_an_empty_admin_token_leaves_the_admin_routes_off(monkeypatch):
    monkeypatch.setenv("RECSYS_ADMIN_TOKEN", "")
    assert Settings().admin_token is None
    monkeypatch.setenv("RECSYS_ADMIN_TOKEN", "t0ken")
    assert Settings().admin_token.get_secret_value() == "t0ken"
