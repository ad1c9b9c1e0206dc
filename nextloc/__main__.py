import sys

from nextloc.cli import main

sys.exit(main())
