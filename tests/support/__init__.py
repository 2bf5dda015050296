"""Test helpers shared across domains (small builders, a live server on loopback)."""
