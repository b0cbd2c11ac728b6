import sys

from sync_service.process.main import main

sys.exit(main())
