"""Benchmarks: scripts that print figures (never timed tests). `reports` is `wareports bench`;
`ingest_throughput` and `export_memory` run as scripts. The server never imports them (an
import-linter contract), and their extra dependencies are the `bench` extra."""
