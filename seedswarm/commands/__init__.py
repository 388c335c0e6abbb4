"""One module per top-level command group; each exposes `register(app)`."""
