import sys

from pipelines.cli import main

if __name__ == "__main__":  # a guard, so worker processes that import this module run nothing
    sys.exit(main())
