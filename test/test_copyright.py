# Copyright 2026 The vehicle_detection Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Every source file carries a copyright line and the Apache-2.0 licence header.

Uses ``ament_copyright`` where it is installed (a real ROS 2 machine). It is
not published as a wheel, so elsewhere the same rule is checked here: a
``Copyright <year> <holder>`` line and the Apache-2.0 notice in the leading
comment block of every Python file of the repository.
"""

from pathlib import Path
import re

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {'.venv', 'build', 'install', 'log', '.git', '.pytest_cache', '.mypy_cache',
             '.ruff_cache', 'var', 'test-artifacts'}
COPYRIGHT = re.compile(r'^# Copyright (\d{4})(-\d{4})? \S.*$', re.MULTILINE)
APACHE = ('Licensed under the Apache License, Version 2.0',
          'http://www.apache.org/licenses/LICENSE-2.0')


def python_files() -> list:
    """Python files of the repository, outside virtual environments and build output."""
    return sorted(path for path in REPO.rglob('*.py')
                  if not SKIP_DIRS.intersection(path.relative_to(REPO).parts))


def header_problem(path: Path) -> str:
    """Why ``path`` fails the rule, or '' when it passes."""
    header = []
    for line in path.read_text(encoding='utf-8').splitlines():
        if not line.startswith('#'):
            break
        header.append(line)
    text = '\n'.join(header)
    if not COPYRIGHT.search(text):
        return 'no "# Copyright <year> <holder>" line in the leading comment block'
    missing = [phrase for phrase in APACHE if phrase not in text]
    return f'Apache-2.0 notice incomplete (missing {missing})' if missing else ''


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright() -> None:
    """Each Python file has a copyright and licence header."""
    try:
        from ament_copyright.main import main
    except ImportError:
        files = python_files()
        assert files, 'no Python files found: the check would prove nothing'
        problems = [f'{p.relative_to(REPO)}: {header_problem(p)}'
                    for p in files if header_problem(p)]
        assert not problems, '\n'.join(problems)
    else:
        rc = main(argv=['.', 'test'])
        assert rc == 0, 'Found errors'


def test_header_rule_catches_missing_header(tmp_path: Path) -> None:
    """The fallback rule fails a file without the header (it can fail)."""
    bad = tmp_path / 'bad.py'
    bad.write_text('"""No header."""\n')
    assert 'Copyright' in header_problem(bad)
    half = tmp_path / 'half.py'
    half.write_text('# Copyright 2026 Someone\n"""Licence missing."""\n')
    assert 'Apache' in header_problem(half)
