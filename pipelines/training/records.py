"""What a trained model records about how it was made."""


def command_line(trainer: str, args, leave_out: tuple[str, ...] = ()) -> str:
    """The `python -m pipelines train ...` command with every option of `args` spelled out (switches
    that are on by name, unset options left out), so the record does not depend on the defaults of
    the day. `--resume` is left out: a resumed run's weights are bitwise those of one straight run
    (tests/test_training.py), so the command reproduces them from nothing."""
    internal = ("run", "command", "what", "trainer", "resume")

    def spelled(key, value):
        flag = f"--{key.replace('_', '-')}"
        return flag if value is True else f"{flag} {value}"

    options = " ".join(spelled(key, value) for key, value in vars(args).items()
                       if key not in internal + leave_out and value is not None and value is not False)
    return f"python -m pipelines train {trainer} {options}"
