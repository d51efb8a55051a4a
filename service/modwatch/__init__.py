"""modwatch: a moderation sidecar for Mastodon instances."""

__version__ = "0.1.0"
