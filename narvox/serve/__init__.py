"""The HTTP server (`narvox serve`): narvox.serve.app."""
