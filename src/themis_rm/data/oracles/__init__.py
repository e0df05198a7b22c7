"""Oracle-verified preference pairs: one oracle per Themis criterion (tests, timing, memory, bandit, lint)."""
