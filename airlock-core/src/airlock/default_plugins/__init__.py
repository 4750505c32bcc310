"""Built-in behaviour, shipped through the same hooks as any third-party plugin."""
