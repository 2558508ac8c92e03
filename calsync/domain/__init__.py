"""calsync."""
