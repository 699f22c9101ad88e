"""Intents YAML, the knowledge base and sandboxed answer templates: what a bot builder writes."""
