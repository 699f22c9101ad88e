"""One model, loaded: its encoders for the three ways the engine calls it, and the settings naming it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.routing.encoders import Encoder, make_encoder
from bot.routing.encoders.batching import BatchingEncoder
from bot.routing.encoders.embedding_cache import CachedEncoder, EmbeddingCache


@dataclass(frozen=True)
class LoadedModel:
    """A model's encoders: micro-batched for single messages from many threads, direct for batches the
    caller formed, and through the embedding cache for a folder's texts."""

    settings: Settings  # `model` names this model
    query_encoder: Encoder
    direct_encoder: Encoder
    encoder: CachedEncoder

    @property
    def model_id(self) -> str:
        return self.encoder.model_id


def load_model(settings: Settings, encoder: Encoder | None = None) -> LoadedModel:
    """`settings.model` on `settings.encoder_backend` (exported first if needed), or `encoder` as given
    (tests share one loaded model; a `BatchingEncoder` is reused with its batcher)."""
    raw = encoder or make_encoder(
        settings.model,
        backend=settings.encoder_backend,
        threads=settings.torch_threads,
        cache_dir=settings.cache_dir,
        repeat_cache=settings.repeat_cache,
    )
    batching: BatchingEncoder | None
    if isinstance(raw, BatchingEncoder):
        batching = raw
        raw = raw.inner
    elif settings.batch_max_size > 1:
        batching = BatchingEncoder(raw, max_batch=settings.batch_max_size, max_wait_ms=settings.batch_wait_ms)
    else:
        batching = None
    return LoadedModel(
        settings=settings,
        query_encoder=batching or raw,
        direct_encoder=raw,
        encoder=CachedEncoder(raw, EmbeddingCache(settings.cache_dir / "embeddings.sqlite3")),
    )
