"""Deciders: what proposes a bar's orders. `rule` is the offline crossover, `llm` a chat model with tools."""
