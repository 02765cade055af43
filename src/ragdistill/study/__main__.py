import sys

from ragdistill.study.cli import main

sys.exit(main())
