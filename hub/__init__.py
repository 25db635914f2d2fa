"""The AutoHands hub core: bus, store, sessions, scheduler, gateway, config and CLI."""
