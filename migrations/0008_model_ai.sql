-- A bot's AI: {"endpoint", "model", "temperature", "instructions"}; the endpoint's key is configuration.
ALTER TABLE models ADD COLUMN llm jsonb;
