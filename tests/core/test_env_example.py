"""`.env.example` lists every variable the settings read (STYLE: one env object, all listed)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = re.compile(r'env\.(?:str|bool|int|float|list|path|db_url|email_url|json)\(\s*"([A-Z0-9_]+)"')
LISTED = re.compile(r"^([A-Z0-9_]+)=", re.MULTILINE)


def test_every_setting_variable_is_listed_in_env_example():
    settings_text = (ROOT / "portal" / "settings.py").read_text()
    read = set(READ.findall(settings_text))
    listed = set(LISTED.findall((ROOT / ".env.example").read_text()))
    assert len(read) > 30
    assert sorted(read - listed) == []
