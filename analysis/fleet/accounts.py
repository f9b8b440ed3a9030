"""The accounts file: one `[[account]]` table per seller account an agency looks after.

    [[account]]
    name = "acme-us"                      # a folder name, unique: reports/acme-us/<period>/
    data = "clients/acme/exports"         # the account's exports: relative to this file, or absolute
    config = "clients/acme/settings.toml" # optional: that client's settings (targets, [spikes], [email])
    recipients = ["ops@acme.example"]     # optional: who gets its e-mail (else [email] to of its config)

Everything is checked before any account is computed, and each problem is one sentence naming the
file and the account: unknown keys, a missing name or folder, a name that cannot be a folder
(`../x`), two accounts of the same name (ignoring case: some disks do), a settings file that
names something unknown."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import SettingsError, UsageError
from analysis.metrics import settings as st
from analysis.metrics.settings import Settings
from analysis.report.render import safe_name
from analysis.safety import is_mail_address, terminal_text

KEYS = ("name", "data", "config", "recipients")
# the fleet page's folder sits beside the accounts' report folders (reports/fleet/<period>/)
RESERVED = "fleet"
MAX_BYTES = 20_000_000  # 10,000 accounts take about 2 MB


@dataclass(frozen=True)
class Account:
    name: str
    data: Path  # absolute
    settings: Settings = field(default_factory=Settings)
    config: Path | None = None  # absolute
    recipients: tuple[str, ...] = ()  # as given in the accounts file (may be empty)

    def mail_to(self) -> tuple[str, ...]:
        """Who gets this account's e-mail: its recipients, else [email] to of its settings."""
        return self.recipients or tuple(self.settings.email.to)


def read(path: str | Path, *, allow_incomplete: bool = False) -> list[Account]:
    """Every account of the file, checked; UsageError / SettingsError (one sentence) otherwise."""
    path = Path(path)
    shown = terminal_text(path)
    doc = _toml(path, shown)
    unknown = sorted(set(doc) - {"account"})
    if unknown:
        raise SettingsError(
            f"{shown}: unknown key {_names(unknown)} at the top; the file holds only [[account]] tables."
        )
    tables = doc.get("account")
    if tables is None or tables == []:
        raise UsageError(f"{shown} names no account; add an [[account]] table with a name and a data folder.")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SettingsError(f"{shown}: write each account as an [[account]] table (two brackets).")
    base = path.resolve().parent
    settings_of: dict[Path | None, Settings] = {}
    seen: dict[str, int] = {}
    out = []
    for i, table in enumerate(tables, 1):
        where = f"{shown}: account {i}"
        bad = sorted(set(table) - set(KEYS))
        if bad:
            raise SettingsError(f"{where}: unknown key {_names(bad)}; known: {', '.join(KEYS)}.")
        name = table.get("name")
        if not isinstance(name, str):
            raise SettingsError(f'{where}: give it a name, like name = "acme-us".')
        name = safe_name(name, f"{where}: the name")
        where = f"{shown}: account {i} ('{terminal_text(name)}')"
        if name.casefold() == RESERVED:
            raise UsageError(
                f"{where}: '{RESERVED}' is the folder of the fleet page; give the account another name."
            )
        if name.casefold() in seen:
            raise UsageError(
                f"{shown}: accounts {seen[name.casefold()]} and {i} are both named '{terminal_text(name)}' "
                "(a name is a folder name, so names must differ, ignoring case)."
            )
        seen[name.casefold()] = i
        data = _folder(base, table.get("data"), where)
        config = None
        if "config" in table:
            config = _file(base, table["config"], where)
        if config not in settings_of:
            try:
                settings_of[config] = st.build(config, allow_incomplete=allow_incomplete)
            except SettingsError as exc:  # the settings file's own sentence, said of this account
                raise SettingsError(f"{where}: {exc}") from exc
        out.append(
            Account(name, data, settings_of[config], config, _recipients(table.get("recipients"), where))
        )
    return out


def _toml(path: Path, shown: str) -> dict:
    try:
        if not path.is_file():
            raise UsageError(
                f"The accounts file {shown} does not exist."
                if not path.exists()
                else f"The accounts file {shown} is not a file; give a TOML file of [[account]] tables."
            )
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"The accounts file {shown} is larger than 20 MB; it is not an accounts file.")
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{shown}: not valid TOML ({exc}).") from exc
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"The accounts file {shown} cannot be read ({exc.__class__.__name__}).") from exc


def _path(base: Path, value: object, where: str, key: str) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        example = "clients/acme/exports" if key == "data" else "clients/acme/settings.toml"
        raise SettingsError(f'{where}: give {key} as a path, like {key} = "{example}".')
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _folder(base: Path, value: object, where: str) -> Path:
    if value is None:
        raise SettingsError(f'{where}: give its data folder, like data = "clients/acme/exports".')
    p = _path(base, value, where, "data")
    if not p.exists():
        raise UsageError(f"{where}: the data folder {terminal_text(p)} does not exist.")
    if not p.is_dir():
        raise UsageError(f"{where}: the data folder {terminal_text(p)} is not a folder.")
    return p


def _file(base: Path, value: object, where: str) -> Path:
    p = _path(base, value, where, "config")
    if not p.is_file():
        raise UsageError(
            f"{where}: the settings file {terminal_text(p)} "
            + ("does not exist." if not p.exists() else "is not a file.")
        )
    return p


def _recipients(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(is_mail_address(a) for a in value):
        raise SettingsError(
            f'{where}: recipients must be a list of e-mail addresses, like recipients = ["ops@acme.example"].'
        )
    return tuple(value)


def _names(keys: list[str]) -> str:
    return ", ".join(f"'{terminal_text(k)}'" for k in keys)
