"""The one-way layout: models/ (networks, geometry, shared types) never reaches into tracker/, and importing a
model stage loads neither the video, pickle and configuration libraries of the tracker nor the tracker itself."""
import ast
import subprocess
import sys

from conftest import ROOT

HEAVY = ("tracker", "av", "cv2", "joblib", "hydra")


def test_no_module_under_models_imports_tracker():
    offenders = []
    for path in sorted((ROOT / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            offenders += [f"{where} {name}" for name in names if name.split(".")[0] in HEAVY]
    assert offenders == []


def test_importing_model_stages_loads_no_tracker_video_or_pickle_library():
    modules = ["models.detection.ssdlite", "models.regressors.blazepose", "models.regressors.hmr2", "models.appearance",
               "models.texture", "models.body_estimation", "models.detection.mot_file"]  # fmt: skip
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert [name for name in HEAVY if f"'{name}'" in loaded.stdout] == []
