"""Appliance disaggregation from smart-meter data."""
