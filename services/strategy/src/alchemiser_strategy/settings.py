"""Settings of the strategy service: ``StrategySettings`` = common settings + ``strategy``.

Environment variables (prefix ``ALCHEMISER_STRATEGY__``):

==================================  ============================================================
``STRATEGIES_DIR``                  folder of the ``.clj`` files (default: the bundled
                                    ``services/strategy/strategies``)
``WEIGHTS``                         JSON object ``{"<file stem>": "<weight>", ...}``: which files
                                    run and their allocation weights (normalised over the files
                                    that succeed, so they need not sum to 1); default: the
                                    ``[weights]`` table of ``strategies.toml`` in
                                    ``STRATEGIES_DIR`` (the file ``alchemiser strategy eval``
                                    reads too), else the original mix below
``MARKET_DATA_SOURCE``              ``dataset`` (default) or ``alpaca``
``DATASET_DIR``                     bar files for ``dataset`` (default: the bundled demo data)
``ALPACA__API_KEY``, ``ALPACA__SECRET_KEY``, ``ALPACA__FEED``, ...
                                    Alpaca market data (required when the source is ``alpaca``)
==================================  ============================================================

The metrics server (``/metrics``, ``/healthz``, ``/readyz``) listens on port 9101 by default
(:data:`METRICS_PORT`; ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` overrides it).

The default weights are the original Alchemiser's mix (its production configuration): KLM 0.20,
Nuclear 0.15, TQQQ-FTLT 0.15, and TECL the rest, 0.50 (the original shared that rest between
TECL and strategies not shipped here).
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alchemiser_common.observability.settings import ObservabilitySettings, metrics_port_field
from alchemiser_common.settings import CommonSettings
from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
from alchemiser_strategy.exceptions import StrategyConfigError

__all__ = [
    "BUNDLED_STRATEGIES_DIR",
    "CONFIG_FILE_NAME",
    "DEFAULT_WEIGHTS",
    "METRICS_PORT",
    "STRATEGY_FILE_SUFFIX",
    "AlpacaDataSettings",
    "StrategyObservability",
    "StrategySection",
    "StrategySettings",
    "default_strategies_dir",
    "read_config_weights",
]

STRATEGY_FILE_SUFFIX = ".clj"

BUNDLED_STRATEGIES_DIR = Path(__file__).resolve().parents[2] / "strategies"
"""``services/strategy/strategies`` in a source checkout or editable install (not in the
wheel: an image copies the folder and sets ``ALCHEMISER_STRATEGY__STRATEGIES_DIR``)."""

_REPO_STRATEGIES_DIR = Path("services") / "strategy" / "strategies"

DEFAULT_WEIGHTS: MappingProxyType[str, Decimal] = MappingProxyType(
    {
        "klm": Decimal("0.20"),
        "nuclear": Decimal("0.15"),
        "tqqq_ftlt": Decimal("0.15"),
        "tecl": Decimal("0.50"),
    }
)
"""The original mix; TECL takes the rest (1 - 0.20 - 0.15 - 0.15)."""

_STEM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


CONFIG_FILE_NAME = "strategies.toml"
"""The strategy folder's config file: ``[weights]`` of the files that run (see above)."""


def read_config_weights(directory: Path) -> dict[str, str] | None:
    """The ``[weights]`` table of ``directory/strategies.toml``, or ``None`` without the file.

    Raises :class:`StrategyConfigError` naming the file when it is not valid TOML or its
    ``weights`` is not a table of stem -> number.
    """
    path = directory / CONFIG_FILE_NAME
    if not path.is_file():
        return None
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise StrategyConfigError(f"{path}: {err}") from err
    weights = document.get("weights")
    if not isinstance(weights, dict) or not all(
        isinstance(value, str | int | float) and not isinstance(value, bool)
        for value in weights.values()
    ):
        raise StrategyConfigError(f"{path}: [weights] must map file stems to numbers")
    return {str(stem): str(value) for stem, value in weights.items()}


def default_strategies_dir() -> Path:
    """The bundled strategies next to the package, else ``services/strategy/strategies`` under
    the working directory (a wheel run from the repository root); the first if neither exists."""
    if BUNDLED_STRATEGIES_DIR.is_dir():
        return BUNDLED_STRATEGIES_DIR
    in_repo = Path.cwd() / _REPO_STRATEGIES_DIR
    return in_repo if in_repo.is_dir() else BUNDLED_STRATEGIES_DIR


class AlpacaDataSettings(BaseModel):
    """How to reach Alpaca's market-data API (nest it in the service settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    secret_key: SecretStr
    feed: Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"] = Field(
        default="iex", description="iex is free; sip needs a subscription."
    )
    adjustment: Literal["raw", "split", "dividend", "all"] = Field(
        default="all", description="Corporate-action adjustment; indicators want 'all'."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="Per HTTP request.")
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries after the first try.")
    backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    backoff_max_s: float = Field(default=8.0, gt=0, le=300)
    url_override: str | None = Field(
        default=None, pattern=r"^https?://", description="Base URL for tests and proxies."
    )


class StrategySection(BaseModel):
    """The ``strategy`` section: which files run with what weight, on which market data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies_dir: Path = Field(default_factory=default_strategies_dir)
    weights: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="File stem (or file name) -> allocation weight; at least one positive.",
    )
    market_data_source: Literal["dataset", "alpaca"] = "dataset"
    dataset_dir: Path = DEMO_DATASET_DIR
    alpaca: AlpacaDataSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _weights_from_config_file(cls, data: Any) -> Any:
        """Without explicit weights, the ``[weights]`` of ``strategies.toml`` in the folder."""
        if not isinstance(data, dict) or data.get("weights") is not None:
            return data
        directory = Path(data.get("strategies_dir") or default_strategies_dir())
        weights = read_config_weights(directory)
        return data if weights is None else {**data, "weights": weights}

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, Decimal]) -> dict[str, Decimal]:
        normalised: dict[str, Decimal] = {}
        for key, weight in weights.items():
            stem = key.removesuffix(STRATEGY_FILE_SUFFIX)
            if not _STEM.match(stem):
                raise ValueError(f"{key!r} is not a strategy file stem")
            if stem in normalised:
                raise ValueError(f"{stem!r} is given twice")
            if not weight.is_finite() or weight < 0:
                raise ValueError(f"weight of {stem!r} must be a finite number >= 0, got {weight}")
            normalised[stem] = weight
        if not any(weight > 0 for weight in normalised.values()):
            raise ValueError("at least one strategy needs a positive weight")
        return dict(sorted(normalised.items()))

    def strategy_files(self) -> dict[str, Path]:
        """File stem -> path of every configured strategy file, sorted by stem."""
        return {
            stem: self.strategies_dir / f"{stem}{STRATEGY_FILE_SUFFIX}" for stem in self.weights
        }

    def alpaca_settings(self) -> AlpacaDataSettings:
        """The Alpaca section; raises ``StrategyConfigError`` naming the variables if absent."""
        if self.alpaca is None:
            raise StrategyConfigError(
                "ALCHEMISER_STRATEGY__ALPACA__API_KEY and ALCHEMISER_STRATEGY__ALPACA__SECRET_KEY "
                "are required when ALCHEMISER_STRATEGY__MARKET_DATA_SOURCE=alpaca"
            )
        return self.alpaca


METRICS_PORT = 9101
"""The default ``ALCHEMISER_OBSERVABILITY__METRICS_PORT`` of strategy (strategy 9101, portfolio
9102, execution 9103: the three run side by side on one machine without settings)."""


class StrategyObservability(ObservabilitySettings):
    """The observability section with strategy's own metrics port."""

    metrics_port: int = metrics_port_field(METRICS_PORT)


class StrategySettings(CommonSettings):
    """Settings of the strategy service process."""

    service_name: str = Field(default="strategy", pattern=r"^[a-z][a-z0-9-]*$")
    observability: StrategyObservability = Field(default_factory=StrategyObservability)
    strategy: StrategySection = Field(default_factory=StrategySection)
