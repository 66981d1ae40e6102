"""How many tokens of a prompt the embedded text encoder (all-MiniLM-L6-v2) reads per channel.

Plain numbers, without torch: a model's description (info.py) is read, and a command's arguments
checked against it, before torch loads."""

MAX_LENGTH = 64  # tokens per channel, [CLS] and [SEP] included (phantom captions take up to 50)
FIRST_LENGTH = 32  # the window of model folders written before mededit.json recorded it
LONGEST_LENGTH = 512  # MiniLM's position embeddings
