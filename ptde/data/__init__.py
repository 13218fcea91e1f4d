"""Replay storage and the Lightning data plumbing around it."""
