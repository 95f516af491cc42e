"""Training and evaluation runs behind the thin train_*/test_* scripts."""
