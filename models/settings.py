"""Every setting of the service, read from `WAREPORTS_*` environment variables."""

from functools import lru_cache
from typing import Annotated, Literal

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAREPORTS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./wareports.db"
    read_database_url: str | None = Field(
        default=None,
        description="A replica of `database_url` that reports, entity queries and CSV exports "
        "read (read-only sessions); ingestion, tokens and the CLI use the primary. Unset: the "
        "primary serves everything.",
    )
    secret_key: str | None = Field(
        default=None, description="Signs export links; required outside the demo."
    )
    public_url: str = "http://127.0.0.1:8000"
    max_range_days: int = Field(default=366, ge=1)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    graphiql: bool = True
    dashboard: bool = Field(
        default=True, description="Serve the dashboard (a static page on the GraphQL API) at /."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    export_ttl_seconds: int = Field(default=3600, ge=1)
    autoclose_interval_seconds: float = Field(default=60.0, gt=0)
    redis_url: str | None = None
    rate_limit: str = Field(
        default="600/minute",
        description='Requests per token, `limits` notation ("600/minute", "10/second;600/minute").',
    )
    click_rate_limit: str = Field(
        default="60/minute",
        description="Clicks recorded per client address on /w/{key}, `limits` notation; beyond, "
        "the visitor is still sent to WhatsApp but the click is not recorded.",
    )
    max_query_depth: int = Field(default=10, ge=2)
    max_query_aliases: int = Field(default=20, ge=0)
    max_query_tokens: int = Field(default=5000, ge=100)
    max_query_cost: int = Field(default=200_000, ge=100)
    report_aggregates: bool = Field(
        default=True,
        description="Read the daily aggregates where they answer a report exactly; false: always "
        "the raw rows (same figures, slower).",
    )
    ingest_queue: int = Field(
        default=5_000,
        ge=1,
        description="Items (webhook messages and statuses, events, clicks) that may wait for the "
        "writer; beyond, ingestion answers 503 with Retry-After.",
    )
    ingest_group: int = Field(
        default=1_000,
        ge=1,
        description="The most items the writer folds into one transaction.",
    )
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="Server logs: one JSON object per line, or plain text."
    )
    metrics: str = Field(
        default="off",
        description="/metrics access: `off` (404), `open`, or `token:<secret>` (Bearer secret, "
        "16 characters or more).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("rate_limit", "click_rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '600/minute': {value!r}") from exc
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_access(cls, value: str) -> str:
        if value in ("off", "open"):
            return value
        if value.startswith("token:") and len(value.removeprefix("token:").strip()) >= 16:
            return "token:" + value.removeprefix("token:").strip()
        raise ValueError("must be off, open, or token:<secret of 16 characters or more>")

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
