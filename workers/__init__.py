"""Process entry points: the Dramatiq worker and the scheduler."""
