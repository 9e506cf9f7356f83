"""One training pipeline, model specs, tuning, evaluation, registry and promotion.

``training`` may import ``features``; never ``serving``.
"""
