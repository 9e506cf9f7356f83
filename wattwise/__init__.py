"""wattwise: ML experimentation and model serving for energy utilities' customer analytics.

The shared core holds only what ``features``, ``training`` and ``serving`` all need:
settings, paths, logging, errors; it imports no stage. The app shell (``wattwise.app``: the
root CLI, the demo, the notebooks' workspace) sits above every stage. Importing either does
no work.
"""

__version__ = "0.1.0"
