"""Graph nodes: start -> decide (<-> tools) -> risk_check -> [approve] -> execute -> advance."""
