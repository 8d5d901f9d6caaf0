"""``python -m sagachain``: the same command as ``sagachain``, for processes started
by path of the interpreter (the devnet spawns nodes this way, so they run in the
very environment that started them, with or without the console script on PATH)."""

from sagachain.cli import main

if __name__ == "__main__":
    main(prog_name="sagachain")
