"""Deployable functions: each module parses its trigger, calls the library, shapes the response."""
