"""`luciole sim fleet`: arguments and entry point of the fleet simulator.

The broker accounts come in as a `FleetTargets` (the `luciole` command line makes one account
per publisher process from the local stack); run on its own, the simulator reads one account
from LUCIOLE_FLEET_MQTT_* (an account the broker does not bind to a client id)."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from controller_fw_sim.dali.profiles import GearProfile, parse_mix
from controller_fw_sim.faults import ScenarioError, load_scenario, write_labels
from controller_fw_sim.fleet import DEFAULT_START, Fleet
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.fleet_publish import CommandLink, MqttTarget, PublisherPool, PublishError
from controller_fw_sim.fleet_runner import (
    Progress,
    peak_rss_mib,
    publish_births,
    publish_deaths,
    run_fleet,
)
from controller_fw_sim.fleet_sensors import DEFAULT_MULTIFUNCTION_FRACTION
from controller_fw_sim.hosted_energy import HostedEnergy

log = logging.getLogger("luciole.sim.fleet")


def parse_speed(text: str) -> float:
    """A positive float, or "max" for as fast as the broker takes it (math.inf)."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or 'max', not {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError("speed must be positive")
    return value


def parse_start(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("--start needs a timezone, e.g. 2025-01-14T16:00:00Z")
    return value.astimezone(UTC)


def _gear_mix(text: str) -> tuple[GearProfile, ...]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controllers", type=int, default=1000, help="number of controllers (1..100000+)")
    parser.add_argument("--luminaires", type=int, default=4, help="luminaires per controller")
    parser.add_argument(
        "--speed", type=parse_speed, default=1.0, help="sim seconds per wall second, or 'max'"
    )
    parser.add_argument("--interval-s", type=float, default=60.0, help="telemetry interval (sim seconds)")
    parser.add_argument("--tick-s", type=float, default=1.0, help="sim seconds per tick")
    parser.add_argument(
        "--duration-s", type=float, default=None, help="sim seconds to run (default: forever)"
    )
    parser.add_argument("--scenario", type=Path, default=None, help="fault scenario (.json/.toml)")
    parser.add_argument("--labels", type=Path, default=None, help="write the scenario's labels CSV here")
    parser.add_argument("--multifunction-fraction", type=float, default=DEFAULT_MULTIFUNCTION_FRACTION,
                        help="share of controllers on multifunction poles (noise, air, weather sensors)")
    parser.add_argument("--no-meters", action="store_true", help="no cabinet meter readings")
    parser.add_argument("--switched-fraction", type=float, default=0.0,
                        help="share of cabinets whose supply is switched off by day (as on "
                        "Sibelga's network); their controllers are unpowered and silent by day")
    parser.add_argument("--gear-mix", type=_gear_mix, default="d4i_full",
                        help="DALI gear profiles the luminaires take in turn, comma-separated: "
                        "dt6 (plain DALI, no energy), d4i_252, d4i_full, dt8_tc")
    parser.add_argument("--hosted", type=Path, default=None,
                        help="a file of controller ids, one a line, played by edge agents hosted "
                        "beside the fleet: the fleet neither publishes for them nor answers "
                        "their commands")
    parser.add_argument("--hosted-energy", type=Path, default=None,
                        help="the hosted agents' gear energy counters (`sim agents --energy-file`): "
                        "the cabinet meters count their luminaires from it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=parse_start, default=DEFAULT_START, help="sim start, ISO UTC")
    parser.add_argument("--wall-origin", type=float, default=None,
                        help="wall clock (epoch s) at which simulated time was --start, when the "
                        "clock is shared with other processes (default: when publishing begins)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--window", type=int, default=200, help="QoS 1 messages in flight per publisher")
    parser.add_argument("--no-births", action="store_true", help="skip retained birth/death messages")
    parser.add_argument("--progress-s", type=float, default=5.0, help="wall seconds between progress lines")


@dataclass(frozen=True)
class FleetTargets:
    """The broker accounts of one fleet run: one per publisher process, one for commands."""

    publishers: list[MqttTarget]
    commands: MqttTarget

    @classmethod
    def shared(cls, target: MqttTarget) -> FleetTargets:
        """One account for every connection (it must not be bound to a client id)."""
        return cls([target], target)


class FleetBrokerSettings(BaseSettings):
    """The broker account of a simulator run on its own (`python -m controller_fw_sim.fleet_cli`)."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_FLEET_", extra="ignore")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str
    mqtt_password: SecretStr

    def targets(self) -> FleetTargets:
        return FleetTargets.shared(MqttTarget(self.mqtt_host, self.mqtt_port, self.mqtt_username,
                                              self.mqtt_password.get_secret_value()))


def _log_progress(p: Progress) -> None:
    eta = "" if p.eta_s is None else f" eta={p.eta_s:.0f}s"
    log.info("sim_elapsed=%.0fs speed=%.1fx telemetry=%d sensor=%d acked=%d msgs_per_s=%.0f commands=%d%s",
             p.sim_s, p.speed, p.messages, p.sensor_messages, p.acked, p.rate, p.commands, eta)


def run(args: argparse.Namespace, targets: FleetTargets) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    scenario = None
    if args.scenario is not None:
        try:
            scenario = load_scenario(args.scenario)
        except (ScenarioError, OSError) as exc:
            log.error("scenario: %s", exc)
            return 2
        if args.labels is not None:
            write_labels(args.labels, scenario)
            log.info("labels written to %s", args.labels)
    inventory = build_inventory(args.controllers, args.luminaires, seed=args.seed,
                                switched_fraction=args.switched_fraction)
    tenants, controllers = inventory.controller_tenant_ids(), list(inventory.controller_ids)
    hosted: list[str] = []
    if args.hosted is not None:
        hosted = [line.strip() for line in args.hosted.read_text().splitlines() if line.strip()]
        if not set(hosted) <= set(controllers):
            log.error("--hosted: %s not in the inventory", sorted(set(hosted) - set(controllers))[:5])
            return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    pool = PublisherPool(targets.publishers, tenants, controllers, workers=args.publishers,
                         window=args.window)
    commands = CommandLink(targets.commands, tenants, controllers)
    try:
        pool.start()
        fleet = Fleet(inventory, start=args.start, interval_s=args.interval_s, scenario=scenario,
                      seed=args.seed, meters=not args.no_meters,
                      multifunction_fraction=args.multifunction_fraction,
                      gear_mix=args.gear_mix, hosted=hosted,
                      hosted_energy=None if args.hosted_energy is None else HostedEnergy(
                          args.hosted_energy, controllers, args.luminaires, hosted))
        commands.start()
        if not args.no_births:
            log.info("births=%d", publish_births(fleet, pool))
        log.info("fleet controllers=%d luminaires=%d speed=%s start=%s", inventory.n_controllers,
                 inventory.n_luminaires, args.speed, fleet.start.isoformat())
        final = run_fleet(fleet, pool, commands, speed=args.speed, duration_s=args.duration_s,
                          tick_s=args.tick_s, stop=stop, on_progress=_log_progress,
                          progress_every_s=args.progress_s, wall_origin_s=args.wall_origin)
        if not args.no_births:
            publish_deaths(fleet, pool)
        pool.close()
    except PublishError as exc:
        log.error("publishing: %s", exc)
        pool.terminate()
        return 1
    finally:
        commands.stop()
        signal.signal(signal.SIGINT, previous)
    log.info("done sim=%.0fs wall=%.1fs speed=%.1fx telemetry=%d peak_rss=%.0fMiB", final.sim_s,
             final.wall_s, final.speed, final.messages, peak_rss_mib(pool))
    return 0


def main(argv: list[str] | None = None, targets: FleetTargets | None = None) -> int:
    parser = argparse.ArgumentParser(prog="luciole sim fleet", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if targets is None:
        try:
            targets = FleetBrokerSettings().targets()
        except ValidationError as exc:
            log.error("no broker account (LUCIOLE_FLEET_MQTT_*): %s", exc)
            return 2
    return run(args, targets)


if __name__ == "__main__":
    raise SystemExit(main())
