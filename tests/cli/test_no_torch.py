"""The `cdat` command builds its whole parser (serve, worker and every training command)
without loading torch: `cdat serve` runs in the API process, which must stay small."""

from __future__ import annotations

import subprocess
import sys


def test_building_every_cdat_command_never_imports_torch() -> None:
    # given a fresh interpreter that builds the full `cdat` parser, as `cdat serve` does
    script = (
        "import sys\n"
        "from mobile_api.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('torch', 'ultralytics', 'openvino') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    # then the help is printed and no heavy framework was loaded on the way
    assert out.returncode == 0, out.stderr
    assert "serve" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
