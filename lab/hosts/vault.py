"""A deployment's passwords as Ansible keeps them: variables in a vars file the user encrypts with
ansible-vault (``inventory/group_vars/all/vault.yml``). `lab deploy` reads them through
``ansible-inventory`` (which decrypts with the user's vault password), never from a command line.

The variables (every one optional; the profile decides which it needs):

- ``redis_ha_password``, ``redis_ha_sentinel_password``: the ``default`` user's, for a profile without ACL users;
- ``redis_ha_users`` (data nodes) and ``redis_ha_sentinel_users`` (Sentinels): user name -> password, for a
  profile with ACL users (``acl.enabled``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from lab.errors import UsageError

PASSWORD = "redis_ha_password"
SENTINEL_PASSWORD = "redis_ha_sentinel_password"
#: The profile's ACL section ("users", "sentinel_users") -> the variable holding its users' passwords.
USER_VARS = {"users": "redis_ha_users", "sentinel_users": "redis_ha_sentinel_users"}


def secrets_document() -> str:
    """Fresh passwords for every user any shipped profile names, as the YAML of a vault file."""
    import yaml

    from lab.profile import available_profiles, profile_data

    users: dict[str, set[str]] = {section: set() for section in USER_VARS}
    for name in available_profiles():
        acl = profile_data(name).get("acl") or {}
        for section in USER_VARS:
            users[section] |= set(acl.get(section) or {})
    doc: dict[str, Any] = {PASSWORD: secrets.token_hex(24), SENTINEL_PASSWORD: secrets.token_hex(24)}
    for section, var in USER_VARS.items():
        doc[var] = {user: secrets.token_hex(24) for user in sorted(users[section])}
    head = "# The deployment's passwords (lab hosts up made them): `ansible-vault edit` changes them.\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


def encrypt(text: str, password_file: Path) -> str:
    """``text`` encrypted as ``ansible-vault encrypt --vault-password-file password_file`` would."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH  # type: ignore[import-untyped]
    from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

    secret = VaultSecret(password_file.read_bytes().strip())
    return str(VaultLib([(DEFAULT_VAULT_ID_MATCH, secret)]).encrypt(text).decode())


def acl_passwords(variables: dict[str, Any], acl: dict[str, dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The profile's ACL users' passwords from a host's variables ("users/app" -> password), and the
    variables that lack one ("redis_ha_users.app")."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for section, users in acl.items():
        given = variables.get(USER_VARS[section]) or {}
        for user in users:
            value = given.get(user) if isinstance(given, dict) else None
            if isinstance(value, str) and value:
                found[f"{section}/{user}"] = literal(f"{USER_VARS[section]}.{user}", value)
            else:
                missing.append(f"{USER_VARS[section]}.{user}")
    return found, missing


def literal(var: str, value: str) -> str:
    """A password as given: ansible-inventory lists variables untemplated, so ``"{{ vault_x }}"`` would be
    deployed as those very characters. Refused (exit 2): give the value itself in the vaulted file."""
    if "{{" in value or "{%" in value:
        raise UsageError(
            f"{var} is a template ({value[:2]}...): lab reads the inventory's variables untemplated; put the "
            "password itself in the vaulted file"
        )
    return value
