"""`python -m mtf.experiment ...`: the experiment's command line (mtf/experiment/cli.py)."""

from mtf.experiment.cli import main

raise SystemExit(main())
