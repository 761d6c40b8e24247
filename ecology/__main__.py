import sys

from ecology.cli import main

sys.exit(main())
