"""Application settings, read once from the environment (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite:///{PROJECT_ROOT / 'escalation_desk.db'}"


class Settings(BaseSettings):
    """Every knob of the product, with defaults that work on a laptop."""

    model_config = SettingsConfigDict(env_file=PROJECT_ROOT / ".env", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    reflex_redis_url: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Escalation Desk <escalations@localhost>"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    # How long to wait for the server to accept a message after its body was sent.
    smtp_data_timeout_seconds: float = Field(default=30.0, gt=0, le=45)

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    escalation_ai_model: str = "claude-sonnet-5-5"
    escalation_ai_assessment_timeout_seconds: float = 30.0
    # "What will the senior ask?" in the Escalate dialog: a fast model, and how long the
    # dialog waits for it before the hint is simply left out.
    anthropic_fast_model: str = "claude-haiku-4-5"
    senior_questions_timeout_seconds: float = Field(default=3.0, gt=0, le=10)

    frontend_url: str = "http://localhost:3000"

    # PSA writeback. The Fernet key(s) that encrypt PSA secrets at rest: one key, or
    # "new,old" while rotating (the first encrypts, any decrypts). Generate one with
    # `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
    # Unset on the SQLite laptop default: a key is generated once into `.psa-key` in the
    # project (git-ignored). Unset with PostgreSQL: saving a PSA secret is refused.
    psa_encryption_key: str | None = None
    # Per request to ConnectWise / HaloPSA (the OAuth token request included).
    psa_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # A click gives up on an unreachable PostgreSQL after this long (libpq's connect_timeout):
    # it then says so, instead of holding the tab's state lock until the OS gives up.
    database_connect_timeout_seconds: int = Field(default=5, ge=2, le=60)

    # Server-side sign-in sessions expire after this much inactivity...
    auth_session_idle_hours: float = Field(default=8.0, gt=0)
    # ...and this long after sign-in, however active.
    auth_session_max_days: float = Field(default=7.0, gt=0)
    # Origins besides FRONTEND_URL's that may call the backend and open its websocket
    # (comma-separated, e.g. "https://desk.example.com,https://desk2.example.com").
    allowed_origins: str = ""
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or
    # networks, e.g. "10.0.0.5,10.1.0.0/16"). Empty: the client address is the peer's.
    trusted_proxies: str = ""
    # Outbound requests (PSA, Slack, Teams) refuse private, loopback, link-local and
    # other internal addresses; set true for an on-premises PSA on a private network.
    outbound_allow_private_addresses: bool = False
    # bcrypt work factor; tests lower it to keep the suite fast.
    password_hash_rounds: int = Field(default=12, ge=4, le=16)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str) -> str:
        # `postgresql://` would pick psycopg2, which we do not ship.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("frontend_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def frontend_origin(self) -> str:
        """FRONTEND_URL's origin (scheme://host[:port])."""
        return _origin(self.frontend_url)

    @property
    def cors_origins(self) -> list[str]:
        """Every origin the backend accepts: FRONTEND_URL's and ALLOWED_ORIGINS."""
        extra = [_origin(o) for o in self.allowed_origins.split(",") if o.strip()]
        return list(dict.fromkeys([self.frontend_origin, *extra]))

    @property
    def secure_cookies(self) -> bool:
        """Cookies get `Secure` when the product is served over https."""
        return self.frontend_url.lower().startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
