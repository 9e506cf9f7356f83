"""The BentoML service, batch scoring, the prediction log and drift monitoring.

``serving`` may import ``features`` and ``training``.
"""
