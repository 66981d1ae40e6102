"""What a trained model records about how it was made."""


def command_line(trainer: str, args, leave_out: tuple[str, ...] = ()) -> str:
    """The `python -m pipelines train ...` command with every option of `args` spelled out (switches
    and unset options left out), so the record does not depend on the defaults of the day."""
    internal = ("run", "command", "what", "trainer")
    options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in vars(args).items()
                       if key not in internal + leave_out and not isinstance(value, bool) and value is not None)
    return f"python -m pipelines train {trainer} {options}"
