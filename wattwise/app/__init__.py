"""The app shell: the root CLI, the demo and the notebooks' workspace.

It sits above every stage (features, training, serving) and may import all of them; nothing
below imports it. The shared core (``wattwise.settings``, ``paths``, ``log``, ``config``,
``errors``, ...) imports no stage.
"""
