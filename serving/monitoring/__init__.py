"""Monitoring: drift and performance of served models (Evidently behind our own module)."""
