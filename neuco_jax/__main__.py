"""`python -m neuco_jax` is the `neuco-jax` command."""

import sys

from neuco_jax.cli import main

sys.exit(main())
