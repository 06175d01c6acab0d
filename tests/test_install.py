"""The newcomer's install: one line, the CPU build of torch said first, Triton in its own extra and in CI."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_blocks(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(1)) for m in re.finditer(r"```sh\n(.*?)```", text, re.S)]


def test_readme_install_is_one_line_after_a_sentence_on_torchs_cpu_build():
    readme = (ROOT / "README.md").read_text()
    start, install = next((i, b) for i, b in code_blocks(readme) if "pip install -e ." in b)
    assert len(install.strip().splitlines()) == 1, "the install command stays one line"
    before = readme[:start].rstrip()
    paragraph = before[before.rindex("\n\n") :]
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in paragraph
    assert "NVIDIA" in paragraph


def test_triton_is_its_own_extra_and_ci_installs_it_before_the_tests():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not any(d.startswith("triton") for d in extras["test"])
    assert any(d.startswith("triton") for d in extras["gpu"])
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    command = next(b for _i, b in code_blocks(readme) if "python3 -m pytest" in b).strip()
    extras = re.fullmatch(r'pip install -e "(\.\[[a-z,]+\])" && python3 -m pytest', command).group(1)
    assert "test" in extras[2:-1].split(",")
    last = ci.strip().splitlines()[-1]  # the README's test command, as CI runs it
    assert f'-e "{extras}"' in last and last.endswith("python3 -m pytest")
    assert 0 <= ci.index("python3 -m pip install -q triton") < ci.index(last)


def test_benchmarks_give_peak_rss_for_both_builds():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    section = text[text.index("### Installing torch's CPU build") :]
    section = section[: section.index("\n### ", 5)]
    assert "256" in section and "A2" in section and "690 MB" in section and "CPU build" in section
