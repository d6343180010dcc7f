"""OpenAI-compatible gateway that routes each request by its model to that model's backends."""
