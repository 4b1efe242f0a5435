# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The training wing behind ``python -m memvit.train``: the trainer (the loop, checkpoints,
resume), the recipe's optimizer and schedule (:mod:`.solver`)."""
