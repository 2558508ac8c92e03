"""calsync: two-way, webhook-first sync between Google Calendar and a local database."""

__version__ = "0.1.0"
