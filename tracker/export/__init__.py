"""A finished run in the formats other tools read: PHALP's results pickle, AMASS-style animation files, a CSV
table and a Rerun recording. Each reads the run through `tracker.io.load_results` (`ExportRun`)."""

from tracker.export.amass import write_amass
from tracker.export.phalp import write_phalp
from tracker.export.rrd import write_rrd
from tracker.export.run import ExportRun
from tracker.export.table import write_csv

FORMATS = ("phalp", "amass", "csv", "rrd")

__all__ = ["FORMATS", "ExportRun", "write_amass", "write_csv", "write_phalp", "write_rrd"]
