"""From a message to a decision: encoders, the FAISS index, scoring, the decision policy, tone, the Engine."""
