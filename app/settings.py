"""Service configuration: one typed Settings, read from RECSYS_* environment variables or .env."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def seconds_of(value: object) -> object:
    """A duration as seconds: a number, or a string such as "90", "30m", "24h", "7d"."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration (seconds, or 30m, 24h, 7d, 1w)")
        return float(found.group(1)) * SECONDS[found.group(2)]
    return value


class Settings(BaseSettings):
    """Every field is listed in the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="RECSYS_", env_file=".env", extra="ignore", protected_namespaces=()
    )

    models_dir: Path = Field(Path("models"), description="root holding <name>/<version>/")
    model_name: str = Field("movielens", description="which model under models_dir to serve")
    model_version: int | None = Field(None, ge=1, description="pin a version; default newest")
    max_n: int = Field(100, ge=1, le=10_000, description="largest n /recommend accepts")
    max_predict_instances: int = Field(10_000, ge=1, description="most instances per /predict")
    max_body_bytes: int = Field(
        2_097_152, ge=1024, description="largest request body; 413 before it is read in full"
    )
    max_batch_users: int = Field(1_000, ge=1, description="most user_ids per POST /recommend")
    require_model: bool = Field(
        False, description="exit at startup when no version loads (default: stay up, 503)"
    )
    poll_seconds: float = Field(
        5.0, ge=0, description="how often to look for a new version (0: never)"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for /admin/*; unset: the admin routes answer 404"
    )
    predict_batching: bool = Field(True, description="coalesce concurrent /predict calls")
    predict_max_batch_size: int = Field(
        4096, ge=1, description="most instances in one coalesced SavedModel call"
    )
    predict_batch_below: int = Field(
        64, ge=1, description="only requests with fewer instances are coalesced"
    )
    predict_batch_timeout_micros: int = Field(
        0, ge=0, le=1_000_000, description="how long a batch's first request waits for company"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated browser origins; empty = CORS off"
    )
    blas_threads: int = Field(1, ge=1, description="BLAS threads for the top-N maths")
    tf_threads: int = Field(
        0,
        ge=0,
        description="TensorFlow's intra-op and inter-op threads for /predict's SavedModel "
        "calls (0: TensorFlow's default, one per core; with several workers, cores / workers)",
    )
    predict_from: Literal["auto", "savedmodel", "factors"] = Field(
        "auto",
        description="what rates /predict's trained pairs: the SavedModel, or the exported "
        "factors in numpy where they reproduce it (mf, mf_bias; other kinds keep the "
        "SavedModel), with no TensorFlow in the worker; auto: the factors from 100,000 items on",
    )
    ann: bool = Field(
        True,
        description="search a version's approximate top-N index where it has one (large "
        "catalogues); false: score every item",
    )
    host: str = Field("127.0.0.1", description="`recsys serve` bind address")
    port: int = Field(8000, ge=1, le=65535, description="`recsys serve` port")
    workers: int = Field(1, ge=1, description="`recsys serve` uvicorn worker processes")
    drain_seconds: float = Field(
        5.0,
        ge=0,
        description="on SIGTERM, stop accepting and serve open connections' next request first",
    )
    graceful_shutdown_seconds: int = Field(
        30,
        ge=1,
        description="on SIGTERM, how long requests in flight may take before they are cancelled",
    )
    data_dir: Path = Field(
        Path("data"), description="writable directory for the default SQLite event store"
    )
    store_url: str | None = Field(
        None,
        description="event store: sqlite:///path or postgresql://user:pass@host/db; "
        "default sqlite:///<data_dir>/events.sqlite3",
    )
    store_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite: 'full' syncs every commit (durable across power loss), 'normal' "
        "survives a crash of the process only",
    )
    sync_seconds: float = Field(
        1.0, ge=0, description="how often each worker reads other workers' writes (0: never)"
    )
    write_token: SecretStr | None = Field(
        None, description="bearer token the write routes require; unset: writes are open"
    )
    api_key: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated API keys; set: every route but /health, /ready, /metrics "
        "and the page's files needs one (Authorization: Bearer or X-API-Key)",
    )
    max_events: int = Field(10_000, ge=1, description="most events per POST /events")
    write_rate: float = Field(
        0.0,
        ge=0,
        description="events per second one client (API key, or address) may write, per "
        "worker; 0: no limit",
    )
    write_burst: int = Field(
        10_000, ge=1, description="events one client may write at once before write_rate holds"
    )
    read_rate: float = Field(
        0.0, ge=0, description="requests per second one client may read, per worker; 0: no limit"
    )
    read_burst: int = Field(100, ge=1, description="reads one client may send at once")
    events_commit_size: int = Field(20_000, ge=1, description="most events one group commit writes")
    attribution_window: Annotated[float, BeforeValidator(seconds_of)] = Field(
        86_400.0,
        gt=0,
        description="how long after an impression a rating of one of its items is attributed "
        "to it (seconds, or 30m, 24h, 7d)",
    )
    blend_cache_mb: float = Field(
        64,
        ge=0,
        description="memory per served version for trained users' item-item scores, kept "
        "between their requests (0: computed every time; answers are the same)",
    )
    min_item_ratings: int = Field(
        5,
        ge=1,
        description="ratings from users the model knows before a new item is folded in and "
        "recommended",
    )
    metrics_dir: Path | None = Field(
        None,
        description="where several workers keep their Prometheus values (emptied at start); "
        "default with workers > 1: a new temporary directory",
    )
    log_level: str = Field("info", description="uvicorn/service log level")
    access_log: bool = Field(True, description="one JSON line per request (with its request id)")

    @field_validator("model_name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value) or value in (".", ".."):
            raise ValueError(
                f"model name {value!r} must be 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @property
    def resolved_store_url(self) -> str:
        """`store_url`, or the default SQLite file in `data_dir`."""
        return self.store_url or f"sqlite:///{(self.data_dir / 'events.sqlite3').as_posix()}"

    @field_validator("admin_token", "write_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # RECSYS_ADMIN_TOKEN= (empty, as compose passes an unset variable) must not turn the
        # admin routes on with an empty password.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("store_url", mode="before")
    @classmethod
    def _empty_url_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        if value.lower() not in levels:
            raise ValueError(f"log level {value!r} is not one of {', '.join(levels)}")
        return value.lower()
