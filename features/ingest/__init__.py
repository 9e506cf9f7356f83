"""Importers of real data onto the canonical tables (Green Button, LCL, REDD, PowerCo, CSV)."""
