"""Customer-service intent router: YAML intents, a sentence encoder, FAISS, one decision per message."""

__version__ = "0.1.0"
