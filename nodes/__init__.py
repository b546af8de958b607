"""Graph nodes: start -> decide (<-> tools) -> risk_check -> [approve] -> execute -> (next bar)."""
