"""wattwise: ML experimentation and model serving for energy utilities' customer analytics.

The shared package holds only what ``features``, ``training`` and ``serving`` all need:
settings, paths, logging, errors and the root CLI. Importing it does no work.
"""

__version__ = "0.1.0"
