import sys

from farz.cli import main

sys.exit(main())
