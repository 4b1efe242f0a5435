# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit.data.synthetic``: see :mod:`memvit.data.synthetic.command`."""

from memvit.data.synthetic.command import main

raise SystemExit(main())
