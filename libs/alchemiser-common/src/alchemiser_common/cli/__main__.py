"""``python -m alchemiser_common.cli`` is the ``alchemiser`` command."""

from alchemiser_common.cli import main

if __name__ == "__main__":
    main()
