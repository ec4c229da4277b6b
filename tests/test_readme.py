"""Every README example runs as written after `make demo`, in a copy of that world: the repo's
examples/ and .venv, and a generated corpus where the demo puts its own (egs/synth_en/corpus/mini).

Recipe runs (`make`, `cd egs/...`, `./run.sh`, exporting a recipe's model) are left to the recipe
tests, which run them on tiny configs."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE_RUNS = ("make ", "cd egs/", "./run.sh", "narvox export exp/")


def readme_examples() -> list[tuple[str, str]]:
    """(language, code) of every python block and every command line of the sh blocks, in order."""
    out = []
    for lang, code in re.findall(r"```(python|sh)\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        if lang == "python":
            out.append((lang, code))
            continue
        for line in code.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith(RECIPE_RUNS):
                out.append((lang, command))
    return out


EXAMPLES = readme_examples()


@pytest.fixture(scope="module")
def world(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(tiny_corpus, root / "egs/synth_en/corpus/mini", symlinks=True)
    (root / "examples").symlink_to(ROOT / "examples")
    if (ROOT / ".venv").is_dir():
        (root / ".venv").symlink_to(ROOT / ".venv")
    return root


def test_the_readme_has_examples_of_every_kind():
    assert sum(lang == "python" for lang, _ in EXAMPLES) >= 4
    assert any(code.startswith("narvox transcribe") for _, code in EXAMPLES)
    assert any(code.startswith("narvox codec") for _, code in EXAMPLES)
    assert any(code.startswith("narvox synthesize") for _, code in EXAMPLES)
    assert any("narvox.TTS" in code for lang, code in EXAMPLES if lang == "python")


@pytest.mark.parametrize("lang,code", EXAMPLES, ids=[c.splitlines()[0][:60] for _, c in EXAMPLES])
def test_readme_example_runs_as_written(world, lang, code):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-c", code]
    out = subprocess.run(command, cwd=world, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
