"""Small helpers every part uses: the clock, private files, and logging with secrets
masked.
"""
