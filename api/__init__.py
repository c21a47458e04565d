"""The Starlette application: routes, auth, limits, settings, CLI and lifespan."""
