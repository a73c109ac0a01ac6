"""Settings: the only code that reads the environment (built once, in `bot.__main__`)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process configuration. Names are fixed by `shared/API.md`; tests pass overrides directly."""

    model_config = SettingsConfigDict(
        env_prefix="DESKLINE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Platform-standard names, read without the prefix.
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    port: int = Field(8080, validation_alias=AliasChoices("PORT", "port"), ge=1, le=65535)
    # `web` (what Fly runs) listens on every interface; `run`, the development command, binds
    # 127.0.0.1 unless HOST is set explicitly (`python -m bot run` checks `model_fields_set`).
    host: str = Field("0.0.0.0", validation_alias=AliasChoices("HOST", "host"))  # noqa: S104 -- a service listens on every interface by design

    # Meta app secret: the HMAC key of `X-Hub-Signature-256`.
    app_secret: SecretStr | None = None
    # The token Meta echoes in the subscription handshake.
    verify_token: SecretStr | None = None
    # Graph API bearer token; unset means the sandbox outbox (nothing leaves the machine).
    access_token: SecretStr | None = None
    graph_api_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v24.0"
    # WhatsApp Business Account id: lets deskline read message templates from the Graph API.
    waba_id: str | None = None
    # Bootstrap admin bearer token for the HTTP API.
    admin_token: SecretStr | None = None

    # Meta batches up to 1,000 updates; reported bodies reach a few MB (WHATSAPP.md 2.9).
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # Any case (`warning`, `Warning`): stored upper-cased.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "auto": readable console on a terminal, JSON lines otherwise (any case).
    log_format: Literal["auto", "json", "console"] = "auto"

    # Worker limits.
    max_jobs: int = Field(50, ge=1)
    job_timeout_s: int = Field(60, ge=1)
    max_tries: int = Field(8, ge=1)
    # A queued job must outlive a worker outage: arq's default expiry is 24 h (issue 10).
    job_expires_s: int = Field(8 * 24 * 3600, ge=60)
    # How often an idle worker looks for due jobs. arq's 0.5 s default alone put the p99 from
    # webhook to reply above 500 ms (BENCHMARKS.md); 50 ms costs 20 cheap polls a second.
    worker_poll_delay_s: float = Field(0.05, gt=0, le=5)
    # While the queue has no due job and nothing runs, the worker waits for the wake-up that
    # every enqueue publishes (storage/keys.py WORKER_IDLE), or until the next deferred job or
    # cron tick is due, and polls at least this often (for enqueues that do not publish, such
    # as arq's own enqueue_job): the idle cost in Redis commands (BENCHMARKS.md).
    worker_idle_poll_s: float = Field(5.0, gt=0, le=60)
    # On SIGTERM/SIGINT the worker takes no new job and gives the running ones this long to
    # finish; the rest are cancelled and handed back to the queue (another worker runs them
    # again). fly.toml's kill_timeout leaves room for it. A second signal cancels at once.
    worker_stop_grace_s: float = Field(5.0, ge=0, le=120)
    # Redis command timeout on the webhook path: past it the webhook answers 503.
    redis_timeout_s: float = Field(2.0, gt=0)
    redis_max_connections: int = Field(64, ge=1)

    # Graph API client limits.
    graph_timeout_s: float = Field(10.0, gt=0)
    graph_rate_per_second: int = Field(80, ge=1)
    # Retries of one Graph call (tenacity, jittered exponential backoff) before the job defers.
    graph_retry_attempts: int = Field(3, ge=1, le=10)
    graph_retry_backoff_s: float = Field(0.2, gt=0)
    # First delay of a send retried after a transient Graph failure; doubles per try, max 5 min.
    reply_retry_base_s: float = Field(5.0, gt=0)

    # Where `python -m bot run` keeps its lock, the embedded Redis' append-only file and URL,
    # and the development secrets it generates (`dev.env`).
    data_dir: str = "var"

    # --- Security limits (SECURITY.md) ------------------------------------------------------
    # Which reverse proxy's headers to trust for the client's address and scheme: "none" uses
    # the socket's peer and ignores X-Forwarded-*/Fly-Client-IP (a client can set them);
    # "fly" reads Fly-Client-IP and X-Forwarded-Proto, which Fly's proxy sets (fly.toml).
    trusted_proxy: Literal["none", "fly"] = "none"
    # Bearer token that /metrics asks for; unset keeps /metrics public.
    metrics_token: SecretStr | None = None
    # Failed authentications (API bearer tokens, console sign-in): per client address, a
    # burst then a sustained rate per minute; and across all clients, per second.
    auth_failures_burst: int = Field(10, ge=1)
    auth_failures_per_minute: float = Field(10.0, gt=0)
    auth_failures_global_per_second: float = Field(50.0, gt=0)
    # Event streams: open streams per user (an API token's agent, a console user), and how
    # often an open stream checks that its token or session is still valid.
    max_streams_per_user: int = Field(8, ge=1)
    stream_recheck_s: float = Field(5.0, gt=0, le=60)
    # Webhook bodies are read before their signature can be checked: at most this many at
    # once (others wait, then 503), each within a deadline.
    webhook_max_concurrent_reads: int = Field(16, ge=1)
    webhook_read_timeout_s: float = Field(10.0, gt=0)
    # One signed webhook item (a message, a status, an "other" change) as raw JSON.
    max_item_bytes: int = Field(64 * 1024, ge=1024)
    # Items stored per intake Lua call: a larger batch is split into several calls.
    intake_chunk_items: int = Field(500, ge=1)
    # PDF transcripts are rendered in worker processes: how many at once, and their limits.
    transcript_workers: int = Field(2, ge=1)
    transcript_timeout_s: float = Field(30.0, gt=0)
    transcript_max_messages: int = Field(2000, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        """`DESKLINE_LOG_LEVEL=warning` is as good as `WARNING`: environment values are often
        written in lower case, and a process that refuses to start over it helps nobody."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
