"""THE COMPARISON, not the product: the plain semantic router a user would write in an afternoon.

    PEER_DATABASE_URL=sqlite:///peer.db uvicorn scripts.bench.peer_server:app --port 8001

A FastAPI sync endpoint (FastAPI runs it in its thread pool), sentence-transformers `encode` with one
torch thread, a FAISS inner-product search for the nearest intent text (top-1), and one SQLModel commit
per request. It serves `POST /v1/chat` with the same body and reply fields `scripts/bench/load_test.py` reads
(`decision_id`), so `load_test.py --peer` drives it exactly as it drives `bot serve`. Intents are the
same folder's names, descriptions and examples (`PEER_INTENTS_DIR`, default `intents`).
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import torch
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer
from sqlmodel import Field, Session, SQLModel, create_engine

from bot.content.intents import load_intents
from bot.routing.encoders.model_folder import bundled_model_path
from bot.routing.state import intent_texts

torch.set_num_threads(1)
model = SentenceTransformer(str(bundled_model_path()), device="cpu")
_intents = load_intents(Path(os.environ.get("PEER_INTENTS_DIR", "intents")))
_texts, _owners = intent_texts(_intents)
_names = [intent.name for intent in _intents.intents]
index = faiss.IndexFlatIP(model.get_sentence_embedding_dimension() or 384)
index.add(np.asarray(model.encode(_texts, normalize_embeddings=True), dtype=np.float32))

database = create_engine(os.environ.get("PEER_DATABASE_URL", "sqlite:///peer.db"))


class Decision(SQLModel, table=True):
    """One routed message (the table is named like bot's, so load_test counts rows the same way)."""

    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    text: str
    intent: str
    score: float


SQLModel.metadata.create_all(database)
app = FastAPI(title="peer: plain semantic router (comparison only)")


class ChatIn(BaseModel):
    """The message."""

    message: str


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Ready once the model and index are loaded (at import)."""
    return {"status": "ok"}


@app.post("/v1/chat")
def chat(body: ChatIn) -> dict[str, object]:
    """Nearest intent text's intent, stored, then answered."""
    vector = model.encode([body.message], normalize_embeddings=True)
    scores, rows = index.search(np.asarray(vector, dtype=np.float32), 1)
    intent = _names[_owners[int(rows[0][0])]]
    with Session(database) as session:
        decision = Decision(text=body.message, intent=intent, score=float(scores[0][0]))
        session.add(decision)
        session.commit()
        session.refresh(decision)
        return {"decision_id": decision.id, "intent": intent, "score": decision.score}
