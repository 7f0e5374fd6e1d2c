"""``python -m stomp_proto.check``: the same as ``stomp-proto check``."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
