"""The API worker's entry point for uvicorn (`luciole api` starts several): settings from the
LUCIOLE_API_* environment the command line prepared, the broker admin for controllers' accounts."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.app import create_app
from api.settings import ApiSettings
from luciole.compose import BrokerDeviceAccounts


class BrokerAdminSettings(BaseSettings):
    """The broker's admin account (dynamic security), for provisioning only."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_BROKER_ADMIN_", extra="ignore")

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None


def app() -> FastAPI:
    admin = BrokerAdminSettings()
    accounts = None
    if admin.host and admin.port and admin.username and admin.password:
        accounts = BrokerDeviceAccounts(admin.host, admin.port, admin.username,
                                        admin.password.get_secret_value())
    return create_app(ApiSettings(), accounts)
