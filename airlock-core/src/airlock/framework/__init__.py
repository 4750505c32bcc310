"""The plugin framework: the hooks, the plugin manager, and the contracts a
plugin implements (connectors, notifiers, policies, priced operations). Plugins reach
all of it through :mod:`airlock.plugin`.
"""
