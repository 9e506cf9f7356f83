"""Data in: the synthetic utility, importers of real data, the feature pipeline, the Feast repo.

``features`` imports neither ``training`` nor ``serving``.
"""
