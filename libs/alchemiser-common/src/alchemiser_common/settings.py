"""Process settings: pydantic-settings with the ``ALCHEMISER_`` prefix and ``__`` nesting.

Every service builds on :class:`CommonSettings`. A bad value stops the process at start-up:
:func:`load_settings` turns pydantic's validation error into a :class:`ConfigurationError`
whose message names the environment variable, in one line.

``ALCHEMISER_INSTANCE_ID`` names the process in its transactional id
(``<service>-<instance id>``) and its traces. Kubernetes sets it from the pod name (the downward
API's ``metadata.name``). Unset, it is :func:`default_instance_id`, ``<hostname>-<pid>``: two
processes of one service on one machine never share a transactional id (a shared one would
fence the other instance at every start); see :func:`default_instance_id` for what a restart
keeps.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.observability.settings import ObservabilitySettings

__all__ = [
    "ENV_PREFIX",
    "CommonSettings",
    "DatabaseSettings",
    "KafkaSettings",
    "RegistrySettings",
    "RuntimeSettings",
    "TopicSettings",
    "default_instance_id",
    "load_settings",
    "masked",
]

ENV_PREFIX = "ALCHEMISER_"
ENV_NESTED_DELIMITER = "__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """How to reach the Kafka cluster."""

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list (not empty)."
    )
    security_protocol: str = Field(default="PLAINTEXT")
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    session_timeout_ms: int = Field(default=6000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    fetch_wait_max_ms: int = Field(default=5, ge=0)
    metadata_recovery_strategy: Literal["none", "rebootstrap"] = Field(
        default="none",
        description=(
            "librdkafka's metadata.recovery.strategy. 'rebootstrap' (librdkafka's default) "
            "forgets the brokers it learned when all are down; after a broker restart a "
            "transactional producer then blocked in send_offsets_to_transaction for minutes "
            "(it waits on a forgotten group coordinator). 'none' keeps them: right when "
            "brokers advertise stable addresses, as on Kubernetes."
        ),
    )
    reconnect_backoff_max_ms: int = Field(
        default=1000,
        ge=10,
        description=(
            "Longest wait between reconnection attempts (librdkafka's default is 10 s): a "
            "broker that comes back is noticed within about this long."
        ),
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_named(cls, value: str) -> str:
        """At least one server and no empty entry (librdkafka would wait for nothing)."""
        servers = [server.strip() for server in value.split(",")]
        if not all(servers):
            raise ValueError("must list at least one host:port, comma-separated, none empty")
        return ",".join(servers)

    def client_config(self) -> dict[str, Any]:
        """The librdkafka settings shared by producers, consumers and the admin client."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "reconnect.backoff.max.ms": self.reconnect_backoff_max_ms,
            "metadata.recovery.strategy": self.metadata_recovery_strategy,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


class TopicSettings(_Section):
    """How topics are created by ``alchemiser topics create``."""

    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class RegistrySettings(_Section):
    """Where the schema registry answers."""

    url: str = Field(default="http://127.0.0.1:8081", pattern=r"^(https?|mock)://")
    basic_auth_user_info: SecretStr | None = None

    def client_config(self) -> dict[str, Any]:
        """Configuration for confluent-kafka's ``SchemaRegistryClient``."""
        config: dict[str, Any] = {"url": self.url}
        if self.basic_auth_user_info is not None:
            config["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        return config


class DatabaseSettings(_Section):
    """The service's own database (inbox table and state)."""

    url: SecretStr = Field(
        default=SecretStr("sqlite:///var/alchemiser.db"),
        description="SQLAlchemy URL; PostgreSQL in production, SQLite as embedded default.",
    )


class RuntimeSettings(_Section):
    """Tunables of the processing loop."""

    batch_size: int = Field(default=100, ge=1, le=10_000)
    poll_timeout_ms: int = Field(default=500, ge=1, le=60_000)
    handler_attempts: int = Field(default=3, ge=1, le=100)
    backoff_initial_ms: int = Field(default=200, ge=1)
    backoff_max_ms: int = Field(default=10_000, ge=1)
    transaction_timeout_ms: int = Field(default=60_000, ge=1_000, le=900_000)
    shutdown_timeout_s: float = Field(default=20.0, gt=0, le=300)
    pause_at: str | None = Field(
        default=None,
        description="Test hook for crash tests: block at this protocol step "
        "(before_db_commit, after_db_commit, after_kafka_commit) after writing pause_file.",
    )
    pause_file: str | None = None


_NOT_IN_INSTANCE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def default_instance_id() -> str:
    """``<hostname>-<pid>``, the instance id when ``ALCHEMISER_INSTANCE_ID`` is unset.

    Unique per running process (two instances of a service on one machine differ by pid; on
    two machines by hostname), so a default can never fence another running instance. A
    stable id is what lets a restarted instance abort its predecessor's open transaction at
    once (``init_transactions``): with this default a process restarted on a workstation gets
    a new id, and a transaction its predecessor left open blocks ``read_committed`` readers of
    those partitions until ``ALCHEMISER_RUNTIME__TRANSACTION_TIMEOUT_MS`` (60 s) aborts it;
    nothing is lost or doubled (a zombie's commit is refused by its stale consumer-group
    generation, whatever its transactional id). In a container the hostname is the pod name
    and the service is usually the container's first process (the same PID at every restart),
    so the default is stable there too; the Helm chart sets ``ALCHEMISER_INSTANCE_ID`` from the
    pod name all the same, which does not depend on it.
    """
    host = _NOT_IN_INSTANCE_ID.sub("-", socket.gethostname()).strip("-.")[:63] or "host"
    return f"{host}-{os.getpid()}"


class CommonSettings(BaseSettings):
    """Settings every Alchemiser process reads."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    service_name: str = Field(default="alchemiser", pattern=r"^[a-z][a-z0-9-]*$")
    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=r"^[A-Za-z0-9._-]+$",
        description=(
            "Part of the transactional id (<service>-<instance id>). Kubernetes sets it from "
            "the pod name; unset, <hostname>-<pid> (unique per process)."
        ),
    )
    environment: str = "dev"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    registry: RegistrySettings = RegistrySettings()
    database: DatabaseSettings = DatabaseSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    observability: ObservabilitySettings = ObservabilitySettings()


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _env_name(location: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part).upper() for part in location)


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings from the environment; raise ``ConfigurationError`` naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as err:
        first = err.errors()[0]
        name = _env_name(tuple(first["loc"]))
        extra = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigurationError(
            f"invalid setting {name}: {first['msg']}{_shown_input(name, first.get('input'))}{extra}"
        ) from None


_SECRET_HINTS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "USER_INFO", "URL", "CREDENTIAL")


def _shown_input(name: str, value: Any) -> str:
    """The rejected value for the message, unless it could hold a secret.

    A section (dict) may contain credentials, and names such as ``..._KEY`` or ``..._URL`` may
    be secrets themselves (a database URL carries a password): those values are not echoed.
    """
    if isinstance(value, dict | list) or any(hint in name for hint in _SECRET_HINTS):
        return ""
    return f" (got {value!r})"


def masked(settings: BaseModel) -> dict[str, Any]:
    """The effective configuration as a dict, secrets replaced by ``'**********'``."""
    return settings.model_dump(mode="json")
