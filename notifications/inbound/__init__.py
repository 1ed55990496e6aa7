"""Inbound: what providers and patients post to us (delivery receipts, replies) and what it does."""
