"""Receive NannyML monitoring notifications, show their alerts, forward them."""

__version__ = "0.1.0"
