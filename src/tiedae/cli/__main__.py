import sys

from tiedae.cli import main

sys.exit(main())
