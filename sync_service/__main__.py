import sys

from sync_service.operator.cli import main

sys.exit(main())
