"""Alembic migrations; `upgrade_to_head` applies them, `wareports migrate` calls it."""
