"""Reads: report filters to SQL aggregates, entity look-ups, DataLoaders and CSV rows."""
