"""Small shared helpers (progress bars)."""
