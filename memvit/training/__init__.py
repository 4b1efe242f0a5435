# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The training wing behind ``python -m memvit.train`` (whose module is the command's wiring):
the loop and the checkpoints it writes (:mod:`.trainer`), the processes under torchrun
(:mod:`.distributed`), what resuming decides (:mod:`.resume`), the run's logs and curves
(:mod:`.run_log`), and the reference's optimizer and schedule (:mod:`.solver`)."""
