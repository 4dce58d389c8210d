"""`.env.example` documents exactly the variables the settings read."""

from __future__ import annotations

import re

from shared.settings import environment_variable_names
from tests.conftest import REPO_ROOT


def test_env_example_lists_every_setting_once_with_a_comment():
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    documented = [m.group(1) for line in lines if (m := re.match(r"#? ?(NOVA_[A-Z0-9_]+)=", line))]
    assert documented == environment_variable_names()
    for index, line in enumerate(lines):
        if re.match(r"#? ?NOVA_", line):
            previous = lines[index - 1]
            assert previous.startswith("# ") and "NOVA_" not in previous.split()[1], line
