"""Where an operation reaches a connector: the configured services, the gateway that
checks a session and the policies and then calls the connector, and the budget path
of operations that cost money.
"""
