"""python -m crmcore <command>: see crmcore.cli."""

from crmcore.cli import main

raise SystemExit(main())
