"""The studies build into a report (quick mode, as in CI)."""

import re
import subprocess
import sys

from .conftest import ROOT


def test_quick_report_builds_every_study(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "report.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (tmp_path / "REPORT.md").read_text()
    numbers = [str(int(n)) for n in re.findall(r'"s(\d\d)_\w+"', (ROOT / "analysis" / "report.py").read_text())]
    sections = re.findall(r"^## (\d+)\. ", text, flags=re.M)
    assert sections == numbers  # each study's section, numbered as its script (sNN_), in the order of STUDIES
    assert text.count("**Finding.**") == len(numbers)
    for figure in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (tmp_path / figure).is_file(), figure
    assert not re.search(r"\bnan\b", text, flags=re.I)  # the word, not "dominant"


def test_quick_report_never_writes_over_the_committed_full_report():
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "report.py"), "--quick", "--out", str(ROOT / "analysis")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "never writes into analysis/" in proc.stderr
