"""What the benchmark scripts share: timing one call over repeats, and writing a report (printed table, markdown
file, and a .json beside it)."""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def time_call(run: Callable[[], Any], repeats: int, device: torch.device) -> tuple[dict[str, float], Any]:
    """Median and best wall ms, and best CPU ms of this process (all its threads), per call of `run` after two
    warm-up calls (CUDA work synchronised); also the last call's result."""

    def synchronised() -> Any:
        result = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return result

    for _ in range(2):
        synchronised()
    wall, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = synchronised()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return {"median_ms": statistics.median(wall), "best_ms": min(wall), "best_cpu_ms": min(cpu)}, result


def write_report(output: Path, setup: str, table: str, rows: list[dict]) -> None:
    """Print the setup line and table, and write them to `output` (markdown) and the rows to a .json beside it."""
    report = setup + "\n\n" + table
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    output.with_suffix(".json").write_text(json.dumps({"setup": setup, "results": rows}, indent=2))
