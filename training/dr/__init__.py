"""Demand response: baselines, event performance, response model, targeting, planning."""
