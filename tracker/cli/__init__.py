"""The user commands: `phalanx-track`, `phalanx-evaluate`, `phalanx-render`, `phalanx-summarize` (also
`python tools/NAME.py`)."""
