"""Configuration and where things live: ``config.yaml`` and its environment
variables, durations as people write them, and the paths of each mode.
"""
