"""`python -m haggler.cli ...`: the `haggler` command, as the console script runs it."""

from haggler.cli.command import main

if __name__ == "__main__":
    main()
