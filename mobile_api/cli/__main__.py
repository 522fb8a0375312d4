"""`python -m mobile_api.cli`: what the worker launcher and the tests start."""

import sys

from mobile_api.cli.commands import main

sys.exit(main())
