"""Training and evaluation support: data readers, degradations and quality metrics."""
