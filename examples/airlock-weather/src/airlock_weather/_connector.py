"""The weather connector. A real one would call a weather API from ``open()`` on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from airlock.plugin import Access, CheckResult, Connector, Params, operation


class WeatherSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: str = Field(min_length=1, max_length=100, description="The city to forecast.")
    units: Literal["metric", "imperial"] = Field("metric", description="metric or imperial.")


class ForecastParams(Params):
    days: int = Field(3, ge=1, le=7, description="How many days ahead.")


class Day(BaseModel):
    day: int
    summary: str
    high: float


class Forecast(BaseModel):
    city: str
    units: str
    days: list[Day]


class Weather(Connector[WeatherSettings]):
    name = "weather"
    title = "Weather (example)"
    Settings = WeatherSettings

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, summary=f"forecasts for {self.settings.city}")

    @operation(
        access=Access.READ,
        params=ForecastParams,
        result=Forecast,
        description="The forecast for the configured city, one entry a day.",
    )
    async def forecast(self, params: ForecastParams) -> Forecast:
        # self.settings is a WeatherSettings for mypy too: Connector[WeatherSettings].
        high = 21.0 if self.settings.units == "metric" else 70.0
        days = [Day(day=n, summary="sunny", high=high) for n in range(1, params.days + 1)]
        return Forecast(city=self.settings.city, units=self.settings.units, days=days)
