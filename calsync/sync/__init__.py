"""Sync use cases in flow order: connect, pull (with reconcile), push, channels."""
