"""Spark jobs: one module per job, each with `main(argv)` taking `--ds YYYY-MM-DD`."""
